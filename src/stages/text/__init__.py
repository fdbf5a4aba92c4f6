"""The text the models read: the corpus and its token windows, and the case studies' words."""

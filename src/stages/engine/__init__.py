"""The engine: intervention plans (:mod:`.plans`) and how they run on a model (:mod:`.forward`)."""

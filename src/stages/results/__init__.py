"""Where numbers are kept: the result cache, the results packs, and a page's choice between them."""

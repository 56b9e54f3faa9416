"""Fields extracted from the text of documents (pure): values and the invoice rules."""

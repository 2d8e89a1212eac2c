"""Dossier's indexing side: articles in, passages and vectors out (knows nothing of `bot`)."""

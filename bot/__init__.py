"""Dossier's answering side: retrieval, verified answers, conversations and front ends."""

"""Accounts: who may do what. Sign-in, the guard on every request, own page, admin pages, API tokens."""

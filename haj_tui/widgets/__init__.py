"""Reusable widgets and modals shared by every screen and tab."""

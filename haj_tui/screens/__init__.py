"""Top-level screens: Projects (the workspace) and Project (one project, in tabs)."""

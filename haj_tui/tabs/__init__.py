"""One module per tab of the Project screen; each holds an `XTab(root, project)` widget."""

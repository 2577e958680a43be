"""haj's full-screen terminal app (Textual). It drives `engine` and nothing else."""

"""The book: its build command, Sphinx extension, generated pages, checked statements,
publishing, citations and releases."""

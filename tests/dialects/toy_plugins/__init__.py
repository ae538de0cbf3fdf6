"""A plugin package for the tests: dialects discovered like those in C{plugins}."""

"""Pure domain logic: no web framework, no database driver, no file I/O."""

"""The release, in one place: hatchling reads it for the package metadata
(``[tool.hatch.version]``), and modules import it from here rather than from the package
root, which imports the Monitor and would make every such import a cycle."""

__version__ = "0.1.0"

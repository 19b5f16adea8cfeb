"""provenance: the provenance and license record of images that may go into AI training sets."""

__version__ = "0.1.0"

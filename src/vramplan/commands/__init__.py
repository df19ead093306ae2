"""Subcommands beyond estimate/models/gpus; each module has `register(subparsers)`."""

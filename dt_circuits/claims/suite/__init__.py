"""Finding claim files and running them on a checkpoint (what the plugin and `dt-circuits claims` share)."""

"""peerscope."""

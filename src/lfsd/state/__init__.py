"""Where the auth guards keep their caches and counters: in this process, or in Redis shared by every replica."""

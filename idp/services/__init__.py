"""Domain logic without Flask's request: each module takes what it needs."""

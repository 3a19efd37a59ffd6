"""High-altitude throw detection (高空抛物检测) on the cameras a community already has."""

"""Demo data: a deterministic synthetic Xixian-like district (西咸新区) with its registers and demo users."""

"""Learn's fourteen pages; what they share lives in app/learn/."""

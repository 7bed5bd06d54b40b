"""Learn's eleven pages; what they share lives in app/learn/."""

"""The Streamlit front end: one module per page, plus small shared helpers."""

"""The pages Streamlit runs, one script each; a page imports helpers from app/, never another page."""

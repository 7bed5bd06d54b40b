"""charlm's web app: the router, and what every page does. Pages live in app/pages/, one module each; Generate
opens first."""

import charlm  # noqa: F401  (first: it caps numpy's BLAS threads before anything loads numpy; see there)
import streamlit as st

from app import sessions, training, uploads
from app.learn import LEARN_PAGES

st.set_page_config(page_title="charlm: a character-level LSTM", page_icon=":material/edit_note:", layout="wide")
uploads.install()   # the upload endpoint keeps only files a page asked for, within budgets (app/uploads.py)
sessions.resume()   # a reload brings the visitor's session back (app/sessions.py); a closed tab's is swept later
GENERATE = st.Page("app/pages/generate.py", title="Generate", icon=":material/edit_note:", url_path="start",
                   default=True)


def _to_generate() -> None:
    """/generate, the address people guess, opens Generate, which as the default page lives at /."""
    st.switch_page(GENERATE, query_params=st.query_params.to_dict())


page = st.navigation({
    "charlm": [
        GENERATE,
        st.Page(_to_generate, title="Generate", url_path="generate", visibility="hidden"),
        st.Page("app/pages/corpus.py", title="Corpus", icon=":material/description:", url_path="corpus"),
        st.Page("app/pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    ],
    "Learn": [st.Page(f"app/pages/learn/{module}.py", title=title, icon=icon, url_path=path)
              for module, title, path, icon in LEARN_PAGES],
}, expanded=True)   # every part listed: collapsed, the menu hides all but ten behind "View more"
training.share_cores()   # a no-op until torch is loaded (a run, the Corpus page's estimate): see app/training.py
if page.url_path != "train":   # the Train page shows the run itself
    training.sidebar_badge()   # keeps a run alive while its visitor writes or reads on another page
page.run()

"""LeNet Transfer Lab: `streamlit run app.py`. Navigation only; each page is a short script in app_pages/.

The folder is not called pages/: Streamlit treats a pages/ folder beside the main script as
its older multipage mode and, on a fresh session opened at /draw, runs pages/draw.py alone,
without this navigation (raw file names in the sidebar, no page config)."""
import streamlit as st

# Streamlit runs this file as __main__; the job workers (multiprocessing's forkserver) re-import it
# as __mp_main__, where the calls below would only log "missing ScriptRunContext" warnings.
if __name__ == "__main__":
    st.set_page_config(page_title="LeNet Transfer Lab", page_icon=":material/draw:", layout="wide")
    # Less empty space above each page's title, so its main action and live chart stay in view.
    st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }</style>")
    st.navigation([
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", url_path="", default=True),
        st.Page("app_pages/lesson.py", title="Lesson", icon=":material/cast_for_education:", url_path="lesson"),
        st.Page("app_pages/source.py", title="Source net", icon=":material/neurology:", url_path="source"),
        st.Page("app_pages/transfer.py", title="Transfer", icon=":material/swap_horiz:", url_path="transfer"),
        st.Page("app_pages/experiments.py", title="Experiments", icon=":material/monitoring:",
                url_path="experiments"),
        st.Page("app_pages/studies.py", title="Studies", icon=":material/science:", url_path="studies"),
        st.Page("app_pages/maps.py", title="Feature maps", icon=":material/grid_view:", url_path="maps"),
        st.Page("app_pages/draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
        st.Page("app_pages/teach.py", title="Teach", icon=":material/school:", url_path="teach"),
        st.Page("app_pages/classroom.py", title="Class", icon=":material/groups:", url_path="class"),
    ]).run()

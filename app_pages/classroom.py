"""Class: the teacher opens a class and trains a net on its pooled drawings; students join with the code."""
import streamlit as st

import ui
from lenet.data import DataError
from ui import classroom as cls
from ui import roles

st.title("Class")
st.caption("One set of drawings for a whole class: the teacher opens a class and shows its code, students join "
           "with it, and every drawing they add on Teach goes into the class set too. The teacher trains one net "
           "on the pooled drawings; everyone tests it on Draw.")


def sign_in() -> None:
    """on_click: the password never stays in the session's state."""
    result = roles.sign_in(st.session_state.get("cls-password", ""))
    st.session_state["cls-password"] = ""
    st.session_state["cls-flash"] = ("success" if result.ok else "error", result.message)


def join() -> None:
    try:
        room = cls.join(st.session_state.get("cls-join", ""))
    except DataError as e:
        st.session_state["cls-flash"] = ("error", f"Cannot join: {e}.")
    else:
        st.session_state["cls-flash"] = ("success", f"Joined class {room.code}: draw on Teach.")


teacher = roles.teacher_mode() and roles.is_teacher()
if not roles.teacher_mode():
    st.info("No teacher password is set on this server: an open lab, where anyone may open a class and train.")
elif teacher:
    st.button("Sign out", on_click=cls.sign_out, help="Back to a student's view; the password signs in again.")
else:
    with st.expander("Teacher sign-in"):
        st.text_input("Teacher password", type="password", key="cls-password")
        st.button("Sign in", on_click=sign_in)
kind, message = st.session_state.pop("cls-flash", (None, None))
if kind:
    getattr(st, kind)(message)

if roles.is_teacher():
    st.subheader("Run a class")
    running = cls.running_class()
    row = st.container(horizontal=True, vertical_alignment="bottom")
    row.button("Open a new class", type="primary" if running is None else "secondary", on_click=cls.open_class,
               help="A new class with its own code and an empty set of drawings.")
    cls.class_picker(row)
    if running is not None:
        st.markdown(f"## Class code: `{running.code}`")
        st.caption("Students open Class, type this code and Join; what they then draw on Teach arrives below.")
        cls.teacher_live(running.code)
        open_now = running.is_open
        if st.toggle("Taking drawings", value=open_now, key=f"cls-open-{running.code}") != open_now:
            running.close(open_now)
            st.rerun()
        with st.expander("Look at and remove drawings"):
            drawings = running.drawings()
            # no key: a new member changes the options, and the choice starts again at student 1
            who = st.selectbox("Whose", sorted({d.student for d in drawings}), format_func=lambda i: f"student {i}",
                               help="One student's drawings at a time.") if drawings else None
            for d in (d for d in drawings if d.student == who):
                c = st.container(horizontal=True, vertical_alignment="center")
                with c:
                    ui.show_image28(d.image, "", width=42)
                    st.caption(f"student {d.student}: {d.char}")
                    if st.button("Remove", key=f"cls-del-{d.tag}-{d.id}"):
                        running.remove(d.tag, d.char, d.id)
                        st.rerun()
        st.subheader("The class net")
        st.caption(f"A net that keeps the source net's {cls.levels_note()} and learns the class's characters "
                   "from every drawing (the last of each character is kept out to test on, given 3 or more).")
        if st.button("Train the class net on the pooled drawings", type="primary"):
            ui.check_data(cls.start_class_net, running, ui.require_source())
        for job in cls.class_jobs(running)[-1:]:
            with st.container(border=True):
                st.markdown(f"**{job.meta['label']}**")
                ui.job_panel(job, "class")
                if job.snapshot().state in ("done", "failed", "stopped", "interrupted") and st.button(
                        "Remove this net", key=f"cls-rm-{job.id}") and cls.remove_job(job):
                    st.rerun()

if not teacher:
    st.subheader("Join a class")
    mine = cls.joined_class()
    row = st.container(horizontal=True, vertical_alignment="bottom")
    row.text_input("Class code", key="cls-join", max_chars=12, placeholder="e.g. K7M2QX",
                   help="The code your teacher shows: 6 letters and digits.")
    row.button("Join", on_click=join)
    if mine is not None:
        st.markdown(f"You are **student {mine.student(ui.session_id())}** of class **{mine.code}**. Name and draw "
                    "characters on **Teach**: each drawing you add goes into the class set too.")
        cls.student_live(mine.code)

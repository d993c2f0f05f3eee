"""App glue shared by the pages (the science lives in lenet/; this package only wires it to Streamlit):
session.py (identity, state, the job pool), background.py (submit, Resume, live job panels), nets.py (dataset and source
net), training.py (the jobs the pages start), drawing.py (canvas and prediction), roles.py (teacher or
student: require_teacher, within_quota), classroom.py (the session's class, the class net; the pages import
them as `from ui import roles, classroom`).

A browser session is identified by `sid` in the URL (st.query_params), so a reload keeps the
same jobs, drawings and choices. Per-session state lives server-side in a process-wide dict
(st.cache_resource) keyed by that id; jobs run in one process-wide JobPool.
"""

from lenet.files import ASSETS

from .session import (dataset, pool, session_dir, session_id, sessions, state)
from .background import (epoch_records, job_label, job_panel, job_title, session_jobs)
from .nets import (MAX_UPLOAD_MB, active_data, active_source, browser_data_path, browser_data_roots,
    current_dataset, data_label, emnist_download_panel, hide_paths, net_bytes, require_dataset, require_source)
from .training import (default_targets, experiment_chart, experiment_dirs, experiment_runs, experiment_summary, finished_nets,
    make_transfer_split, read_experiment, shipped_results, start_experiment, start_source_training, start_transfer,
    teach_split, transfer_recipe, READOUTS, run_name, is_omniglot)
from .omniglot import teach_panel as omniglot_teach_panel
from .studies import TERMS, live_summary, read_study, shipped_study, start_study, study_dirs, summary_table
from .drawing import (CLEAR_HINT, canvas, canvas_objects, canvas_row, check_data, classify, clear_button, clear_canvas,
    net_picker, prediction_panel, read_drawing, show_image28, table)
from .confusion import show_confusion
from .runs import grid_run_closer, run_details

__all__ = ['ASSETS', 'sessions', 'pool', 'session_dir', 'session_id', 'state', 'epoch_records',
    'job_label', 'job_panel', 'job_title', 'session_jobs', 'MAX_UPLOAD_MB', 'active_data', 'active_source',
    'browser_data_path',
    'browser_data_roots', 'current_dataset', 'data_label', 'dataset', 'emnist_download_panel', 'hide_paths', 'net_bytes',
    'require_dataset', 'require_source', 'default_targets', 'experiment_chart',
    'experiment_dirs', 'experiment_runs', 'experiment_summary', 'finished_nets', 'make_transfer_split', 'read_experiment',
    'shipped_results', 'start_experiment',
    'start_source_training', 'start_transfer', 'teach_split', 'transfer_recipe', 'READOUTS', 'run_name',
    'omniglot_teach_panel', 'is_omniglot', 'CLEAR_HINT', 'canvas',
    'canvas_row', 'clear_button', 'TERMS', 'live_summary', 'read_study', 'shipped_study', 'start_study', 'study_dirs', 'summary_table',
    'canvas_objects', 'check_data', 'classify', 'clear_canvas', 'read_drawing', 'net_picker', 'prediction_panel',
    'show_image28', 'table', 'show_confusion', 'run_details', 'grid_run_closer']

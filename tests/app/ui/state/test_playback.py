"""The window's record/release/loop rules, Qt-free: every event's steps."""
from app.ui.state.playback import PlaybackRules, Steps


def test_a_file_opened_before_the_model_waits_then_records_from_frame_0():
    rules = PlaybackRules()
    assert rules.source_opened(live=False) == Steps()  # paused on its first frame: nothing analysed yet
    assert rules.waiting_for_model
    assert rules.model_loaded(recording=False) == Steps(start_recording=True, release=True)
    assert not rules.waiting_for_model


def test_a_file_opened_after_the_model_records_and_plays_at_once():
    rules = PlaybackRules()
    assert rules.model_loaded(recording=False) == Steps()
    assert rules.source_opened(live=False) == Steps(start_recording=True, release=True)


def test_a_camera_plays_at_once_and_records_only_when_asked():
    rules = PlaybackRules()
    rules.model_loaded(recording=False)
    assert rules.source_opened(live=True) == Steps()
    assert not rules.waiting_for_model


def test_a_failed_model_lets_the_file_play_unlabelled_and_saves_what_was_recording():
    rules = PlaybackRules()
    rules.source_opened(live=False)
    assert rules.model_failed() == Steps(stop_recording=True, release=True)
    # a model that loads later does not start a session in the middle of the file
    assert rules.model_loaded(recording=False) == Steps(release=True)


def test_a_new_model_while_recording_saves_the_session_and_starts_another():
    rules = PlaybackRules()
    rules.model_loaded(recording=False)
    rules.source_opened(live=True)
    assert rules.model_loaded(recording=True) == Steps(stop_recording=True, start_recording=True)
    assert rules.model_loaded(recording=False) == Steps()  # not recording: nothing to restart


def test_a_looping_file_records_each_pass_as_a_session_of_its_own():
    rules = PlaybackRules()
    rules.model_loaded(recording=False)
    rules.source_opened(live=False)
    assert rules.pass_finished(loop=True) == Steps(start_recording=True, release=True)
    assert rules.pass_finished(loop=False) == Steps()  # the end: the session is saved, the file stops


def test_a_recording_stopped_by_the_user_does_not_restart_by_itself():
    rules = PlaybackRules()
    rules.source_opened(live=False)
    rules.recording_stopped()  # stopped before the model came
    assert rules.model_loaded(recording=False) == Steps(release=True)
    rules.source_closed()
    assert rules.model_loaded(recording=False) == Steps()  # no source: nothing to release or record

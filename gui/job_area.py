"""The job area in the status bar: what runs, how far it is, and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from gui.jobs import JobCancelled, JobFailed, JobProgress, JobResult, JobRunner, JobStarted

FINAL_TEXT_MS = 4000  # how long "Done" / "Cancelled" / "Failed" stays readable


class JobArea(QWidget):
    """Follows a :class:`JobRunner`: shows the running job's title, progress and a Cancel button."""

    def __init__(self, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.runner = runner
        self.label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(160)
        self.progress.setMaximumHeight(16)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.cancel_button.setToolTip("Stop the running job")
        self.cancel_button.clicked.connect(lambda: runner.cancel())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        self._clear_timer = QTimer(self, singleShot=True, interval=FINAL_TEXT_MS)
        self._clear_timer.timeout.connect(lambda: self.label.setText(""))
        self._set_running(False)

        runner.jobStarted.connect(self._started)
        runner.jobProgress.connect(self._progressed)
        runner.jobResult.connect(lambda m: self._ended(m, "Done"))
        runner.jobFailed.connect(lambda m: self._ended(m, "Failed"))
        runner.jobCancelled.connect(lambda m: self._ended(m, "Cancelled"))

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)

    def _started(self, message: JobStarted) -> None:
        self._clear_timer.stop()
        self.label.setText(message.title)
        self.progress.setRange(0, 0)  # a busy bar until the job reports a first step
        self._set_running(True)

    def _progressed(self, message: JobProgress) -> None:
        if message.job_id != self.runner.running_job:
            return
        self.progress.setRange(0, max(message.total, 1))
        self.progress.setValue(message.step)
        title = self.runner.title(message.job_id)
        self.label.setText(f"{title}: {message.message}" if message.message else title)

    def _ended(self, message: JobResult | JobFailed | JobCancelled, outcome: str) -> None:
        self.label.setText(f"{outcome}: {message.title}")
        if not self.runner.busy:
            self._set_running(False)
        self._clear_timer.start()

"""Background work: job kinds and lanes, the durable queue, the handler registry, workers and wake-ups."""

from backend.jobs.handlers import JobContext, JobHandlers
from backend.jobs.kinds import JobKind, Lane, lane_of
from backend.jobs.queue import JobQueue
from backend.jobs.records import JobRecord

__all__ = ["JobContext", "JobHandlers", "JobKind", "JobQueue", "JobRecord", "Lane", "lane_of"]

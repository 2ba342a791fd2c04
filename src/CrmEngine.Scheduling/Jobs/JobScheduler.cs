using System.Collections.Concurrent;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using LiteDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>Filter for <see cref="JobScheduler.ListAsync"/>.</summary>
public sealed record JobQuery
{
    public JobState? State { get; init; }
    /// <summary>Owner: a plugin id or <c>core</c>.</summary>
    public string? Owner { get; init; }
    public string? Kind { get; init; }
    /// <summary>Only jobs due now or earlier (Scheduled).</summary>
    public bool DueOnly { get; init; }
    public int Limit { get; init; } = 100;
    /// <summary>Paging: jobs with a greater id than this.</summary>
    public string? AfterId { get; init; }
}

/// <summary>The scheduler as the host's health output shows it.</summary>
public sealed record SchedulerHealth(string NodeId, long Due, long Running, long Parked, long Paused,
    TimeSpan? OldestOverdue, DateTimeOffset? NextDue, int RunsInProgressHere);

/// <summary>
/// The durable scheduler. Jobs live in the engine's LiteDB store (<c>_jobs</c>, <c>_job_runs</c>); every
/// change is one transaction on the store's writer thread. Due jobs are found through the index on
/// <c>due</c> only. A run holds a lease (node, run id, expiry); its result is applied only while it still
/// holds the lease, so a run taken over after its lease expired cannot overwrite the newer run.
/// </summary>
public sealed class JobScheduler : IDisposable
{
    public const string CoreOwner = "core";
    internal const string JobsCollection = "_jobs";
    internal const string RunsCollection = "_job_runs";

    private readonly CrmDatabase _db;
    private readonly LiteDatabase _lite;
    private readonly JobHandlerRegistry _registry;
    private readonly SchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<IEnumerable<IHandlerFaultObserver>> _observerSource;
    private readonly ConcurrentDictionary<string, Task> _inFlight = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _completionGate = new();
    private List<PendingCompletion> _pendingCompletions = [];
    private bool _completionFlushing;
    private long _writes;
    private readonly Action<string> _onRegistered;
    private IHandlerFaultObserver[]? _observers;
    private int _disposed;

    public JobScheduler(CrmDatabase database, JobHandlerRegistry registry, SchedulerOptions options, TimeProvider? timeProvider = null,
        ILogger<JobScheduler>? logger = null, Func<IEnumerable<IHandlerFaultObserver>>? observers = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(options);
        _db = database;
        _lite = CoreDatabaseSeam.Database(database);
        _registry = registry;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _observerSource = observers ?? (() => []);
        NodeId = string.IsNullOrWhiteSpace(options.NodeId) ? Environment.MachineName : options.NodeId.Trim();
        _onRegistered = kind => _ = ReleaseWaitingAsync(kind);
        _registry.Registered += _onRegistered;
        CoreDatabaseSeam.WriteAsync(_db, () =>
        {
            Jobs.EnsureIndex("ix_due", "$.due");
            Jobs.EnsureIndex("ix_state", "$.state");
            Jobs.EnsureIndex("ix_liveKey", "$.liveKey");
            Jobs.EnsureIndex("ix_waiting", "$.waiting");
            Runs.EnsureIndex("ix_job", "$.job");
            return true;
        }).GetAwaiter().GetResult();
    }

    /// <summary>This host's name in leases.</summary>
    public string NodeId { get; }

    public JobHandlerRegistry Registry => _registry;

    /// <summary>Raised (off the writer thread) when a run ends, is skipped or is found abandoned.</summary>
    public event Action<JobRunInfo>? RunEnded;

    private ILiteCollection<BsonDocument> Jobs => _lite.GetCollection(JobsCollection);

    private ILiteCollection<BsonDocument> Runs => _lite.GetCollection(RunsCollection);

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private IHandlerFaultObserver[] Observers => _observers ??= _observerSource().ToArray();

    /// <summary>An <see cref="IScheduler"/> acting as <paramref name="owner"/> (a plugin id, or <see cref="CoreOwner"/>).</summary>
    public IScheduler ForOwner(string owner)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(owner);
        return new OwnerScheduler(this, owner);
    }

    // ------------------------------------------------------------------ scheduling

    internal async Task<JobInfo> ScheduleAsync(string owner, JobRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.Kind))
        {
            throw new ArgumentException("Kind: a job needs a kind.", nameof(request));
        }

        if (request.MaxAttempts is < 1)
        {
            throw new ArgumentException($"MaxAttempts: must be at least 1 (got {request.MaxAttempts}).", nameof(request));
        }

        if (request.Timeout is { } t && t <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Timeout: must be positive (got {t}).", nameof(request));
        }

        ScheduleMath.Validate(request.Schedule);
        cancellationToken.ThrowIfCancellationRequested();
        var info = await WriteAsync(() =>
        {
            var now = NowMs;
            if (!string.IsNullOrEmpty(request.UniqueKey))
            {
                var existing = FindLive(owner, request.UniqueKey);
                if (existing is not null)
                {
                    if (request.UniqueKeyPolicy == UniqueKeyPolicy.KeepExisting)
                    {
                        return existing.ToInfo();
                    }

                    EndOrRequest(existing, JobState.Cancelled, now);
                    existing.LiveKey = null;
                    Save(existing, now);
                }
            }

            var (resolved, first) = ScheduleMath.Resolve(request.Schedule, _time.GetUtcNow());
            var doc = new JobDocument
            {
                Id = WritePipeline.NewId(),
                Owner = owner,
                Kind = request.Kind.Trim(),
                Payload = request.Payload,
                UniqueKey = string.IsNullOrEmpty(request.UniqueKey) ? null : request.UniqueKey,
                Schedule = resolved,
                Misfire = request.Misfire,
                MaxAttempts = request.MaxAttempts,
                Timeout = request.Timeout,
                Created = now,
            };
            if (first is { } f)
            {
                doc.State = JobState.Scheduled;
                doc.Due = doc.Occurrence = f.ToUnixTimeMilliseconds();
                doc.LiveKey = doc.UniqueKey is null ? null : JobDocument.LiveKeyOf(owner, doc.UniqueKey);
            }
            else
            {
                doc.State = JobState.Completed;
                doc.Ended = now;
                doc.LastError = "the cron expression has no future occurrence";
            }

            doc.Updated = now;
            Jobs.Insert(doc.ToBson());
            return doc.ToInfo();
        }).ConfigureAwait(false);
        Wake();
        return info;
    }

    private JobDocument? FindLive(string owner, string key) =>
        Jobs.Find(Query.EQ("liveKey", JobDocument.LiveKeyOf(owner, key))).Select(JobDocument.FromBson).FirstOrDefault(d => d.IsLive);

    private void Save(JobDocument doc, long now)
    {
        doc.Updated = now;
        Jobs.Update(doc.ToBson());
    }

    /// <summary>Ends the job now, or (while it runs) asks for it to end as <paramref name="state"/> when the run finishes.</summary>
    private static void EndOrRequest(JobDocument doc, JobState state, long now)
    {
        if (doc.State == JobState.Running)
        {
            doc.Requested = state;
            return;
        }

        doc.State = state;
        doc.Due = null;
        if (state is JobState.Cancelled or JobState.Completed)
        {
            doc.Ended = now;
            doc.LiveKey = null;
        }
    }

    // ------------------------------------------------------------------ changes by id

    internal enum Change { Cancel, Pause, Resume, Retry, RunNow }

    /// <summary>Applies a change; null when there is no such job (for <paramref name="owner"/>), otherwise the problem or "" when done.</summary>
    internal async Task<string?> ChangeAsync(string jobId, string? owner, Change change, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        cancellationToken.ThrowIfCancellationRequested();
        var result = await WriteAsync(() =>
        {
            var doc = Load(jobId);
            if (doc is null || (owner is not null && doc.Owner != owner))
            {
                return null;
            }

            var now = NowMs;
            var problem = Apply(doc, change, now);
            if (problem.Length == 0)
            {
                Save(doc, now);
            }

            return problem;
        }).ConfigureAwait(false);
        if (result is "")
        {
            Wake();
        }

        return result;
    }

    private string Apply(JobDocument doc, Change change, long now)
    {
        switch (change)
        {
            case Change.Cancel:
                if (!doc.IsLive)
                {
                    return $"job {doc.Id} is already {doc.State}.";
                }

                EndOrRequest(doc, JobState.Cancelled, now);
                doc.LiveKey = null;
                return "";
            case Change.Pause:
                if (doc.State is not (JobState.Scheduled or JobState.Running))
                {
                    return $"job {doc.Id} is {doc.State}; only a scheduled or running job can be paused.";
                }

                EndOrRequest(doc, JobState.Paused, now);
                return "";
            case Change.Resume:
                if (doc.State == JobState.Running && doc.Requested == JobState.Paused)
                {
                    doc.Requested = null;
                    return "";
                }

                if (doc.State != JobState.Paused)
                {
                    return $"job {doc.Id} is {doc.State}, not Paused.";
                }

                doc.Revision++;
                doc.Attempt = 0;
                var next = ScheduleMath.IsRecurring(doc.Schedule)
                    ? ScheduleMath.NextFrom(doc.Schedule, _time.GetUtcNow())
                    : doc.Schedule.At;
                return ScheduleNext(doc, next, now);
            case Change.Retry:
                if (doc.State != JobState.Parked)
                {
                    return $"job {doc.Id} is {doc.State}; only a parked job can be retried.";
                }

                doc.State = JobState.Scheduled;
                doc.Attempt = 0;
                doc.Due = now;
                return "";
            case Change.RunNow:
                if (doc.State == JobState.Parked)
                {
                    goto case Change.Retry;
                }

                if (doc.State != JobState.Scheduled)
                {
                    return $"job {doc.Id} is {doc.State}; only a scheduled or parked job can be run now{(doc.State == JobState.Paused ? " (resume it first)" : "")}.";
                }

                doc.Due = now;
                if (ScheduleMath.IsRecurring(doc.Schedule) && doc.Attempt == 0)
                {
                    doc.Occurrence = now;   // an extra occurrence; the regular ones follow
                }

                return "";
            default:
                throw new ArgumentOutOfRangeException(nameof(change));
        }
    }

    private static string ScheduleNext(JobDocument doc, DateTimeOffset? next, long now)
    {
        if (next is not { } n)
        {
            doc.State = JobState.Completed;
            doc.Due = null;
            doc.Ended = now;
            doc.LiveKey = null;
            return "";
        }

        var ms = n.ToUnixTimeMilliseconds();
        doc.State = JobState.Scheduled;
        doc.Occurrence = ms;
        doc.Due = ms;
        return "";
    }

    internal async Task<bool> RescheduleAsync(string jobId, string? owner, JobSchedule schedule, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        ScheduleMath.Validate(schedule);
        cancellationToken.ThrowIfCancellationRequested();
        var done = await WriteAsync(() =>
        {
            var doc = Load(jobId);
            if (doc is null || (owner is not null && doc.Owner != owner) || !doc.IsLive)
            {
                return false;
            }

            var now = NowMs;
            var (resolved, first) = ScheduleMath.Resolve(schedule, _time.GetUtcNow());
            doc.Schedule = resolved;
            doc.Revision++;
            doc.Attempt = 0;
            if (doc.State is JobState.Scheduled or JobState.Parked)
            {
                ScheduleNext(doc, first, now);
            }
            else if (doc.State == JobState.Paused)
            {
                doc.Occurrence = first?.ToUnixTimeMilliseconds();
            }

            Save(doc, now);
            return true;
        }).ConfigureAwait(false);
        Wake();
        return done;
    }

    // ------------------------------------------------------------------ reads

    private JobDocument? Load(string id) => Jobs.FindById(id) is { } d ? JobDocument.FromBson(d) : null;

    public Task<JobInfo?> GetAsync(string jobId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(Load(jobId)?.ToInfo());
    }

    internal Task<JobInfo?> FindByKeyAsync(string owner, string key, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(FindLive(owner, key)?.ToInfo());
    }

    /// <summary>Jobs in id (creation) order, filtered; uses the state index when a state is given.</summary>
    public Task<IReadOnlyList<JobInfo>> ListAsync(JobQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(query.Limit);
        cancellationToken.ThrowIfCancellationRequested();
        var now = NowMs;
        IEnumerable<JobDocument> source;
        if (query.DueOnly || query.State is not null)
        {
            // A bounded set (found through the due or state index), sorted into id order.
            source = (query.DueOnly ? Jobs.Find(Query.Between("due", 0L, now)) : Jobs.Find(Query.EQ("state", query.State!.Value.ToString())))
                .Select(JobDocument.FromBson)
                .Where(d => query.AfterId is null || string.CompareOrdinal(d.Id, query.AfterId) > 0)
                .OrderBy(d => d.Id, StringComparer.Ordinal);
        }
        else
        {
            // Streamed in id order from the primary key: a page never reads more than it needs.
            source = Jobs.Find(Query.GT("_id", query.AfterId ?? "")).Select(JobDocument.FromBson);
        }

        var list = source
            .Where(d => query.State is null || d.State == query.State)
            .Where(d => !query.DueOnly || d.State == JobState.Scheduled)
            .Where(d => query.Owner is null || string.Equals(d.Owner, query.Owner, StringComparison.OrdinalIgnoreCase))
            .Where(d => query.Kind is null || d.Kind == query.Kind)
            .Take(query.Limit)
            .Select(d => d.ToInfo())
            .ToList();
        return Task.FromResult<IReadOnlyList<JobInfo>>(list);
    }

    /// <summary>Recorded runs of a job, newest first.</summary>
    public Task<IReadOnlyList<JobRunInfo>> RunsAsync(string jobId, int limit = 20, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        cancellationToken.ThrowIfCancellationRequested();
        var runs = Runs.Find(Query.EQ("job", jobId)).Select(RunDocument.FromBson)
            .OrderByDescending(r => r.Id, StringComparer.Ordinal).Take(limit).Select(r => r.ToInfo()).ToList();
        return Task.FromResult<IReadOnlyList<JobRunInfo>>(runs);
    }

    public Task<SchedulerHealth> HealthAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var now = NowMs;
        var dueRange = Query.Between("due", 0L, now);
        var oldestDue = Jobs.Find(dueRange, 0, 1).FirstOrDefault();
        var next = Jobs.Find(Query.GT("due", now), 0, 1).Select(JobDocument.FromBson).FirstOrDefault();
        TimeSpan? oldest = oldestDue is null ? null : TimeSpan.FromMilliseconds(now - oldestDue["due"].AsInt64);
        var running = Jobs.Count(Query.EQ("state", nameof(JobState.Running)));
        var expiredLeases = Jobs.Count(Query.And(dueRange, Query.EQ("state", nameof(JobState.Running))));
        return Task.FromResult(new SchedulerHealth(NodeId, Jobs.Count(dueRange) - expiredLeases,
            running,
            Jobs.Count(Query.EQ("state", nameof(JobState.Parked))),
            Jobs.Count(Query.EQ("state", nameof(JobState.Paused))),
            oldest, JobDocument.Ms(next?.Due), _inFlight.Count));
    }

    // ------------------------------------------------------------------ running

    private sealed record Claimed(JobDocument Job, RunDocument Run, JobKindRegistration Registration, TimeSpan Timeout);

    /// <summary>A kind was registered: its jobs that were waiting for a handler are due at once.</summary>
    private async Task ReleaseWaitingAsync(string kind)
    {
        try
        {
            var released = await WriteAsync(() =>
            {
                var now = NowMs;
                var count = 0;
                foreach (var doc in Jobs.Find(Query.EQ("waiting", kind)).Select(JobDocument.FromBson)
                             .Where(d => d.State == JobState.Scheduled && d.LastOutcome == JobRunOutcome.NoHandler && d.Due > now).ToList())
                {
                    doc.Due = now;
                    Save(doc, now);
                    count++;
                }

                return count;
            }).ConfigureAwait(false);
            if (released > 0)
            {
                _logger.LogInformation("Scheduler: {Count} job(s) of kind {Kind} were waiting for a handler and are due now", released, kind);
            }
        }
        catch (Exception ex) when (ex is ObjectDisposedException or LiteException or StoreException or InvalidOperationException)
        {
            _logger.LogWarning(ex, "Scheduler: jobs waiting for kind {Kind} could not be released; they are looked at again after Scheduler:NoHandlerDelay", kind);
        }

        Wake();
    }

    /// <summary>Wakes the loop (a job was scheduled or a kind registered).</summary>
    public void Wake() => Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>
    /// Takes back the runs this node held when it stopped (killed or crashed): each is recorded as
    /// Abandoned and its occurrence runs again at once. Called once at start.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var ended = await WriteAsync(() =>
        {
            var now = NowMs;
            var events = new List<JobRunInfo>();
            foreach (var doc in Jobs.Find(Query.EQ("state", nameof(JobState.Running))).Select(JobDocument.FromBson).ToList())
            {
                if (doc.LeaseOwner == NodeId)
                {
                    Abandon(doc, now, $"the engine on {NodeId} stopped during the run (killed or crashed); the occurrence runs again", events);
                    Save(doc, now);
                }
            }

            return events;
        }).ConfigureAwait(false);
        Raise(ended);
        if (ended.Count > 0)
        {
            _logger.LogWarning("Scheduler: {Count} run(s) interrupted by the last stop of {Node} will run again", ended.Count, NodeId);
        }
    }

    /// <summary>Closes the run a lost lease belonged to and counts it as a failed attempt.</summary>
    private void Abandon(JobDocument doc, long now, string reason, List<JobRunInfo> events)
    {
        if (doc.LeaseRun is { } runId && Runs.FindById(runId) is { } r)
        {
            var run = RunDocument.FromBson(r);
            run.Ended = now;
            run.Outcome = JobRunOutcome.Abandoned;
            run.Error = reason;
            Runs.Update(run.ToBson());
            events.Add(run.ToInfo());
        }

        doc.LeaseOwner = doc.LeaseRun = null;
        doc.LastOutcome = JobRunOutcome.Abandoned;
        doc.LastError = reason;
        doc.Attempt++;
        doc.State = JobState.Scheduled;
        doc.Due = now;
        if (doc.Requested is { } requested)
        {
            doc.Requested = null;
            EndOrRequest(doc, requested, now);
        }
        else if (doc.Attempt >= MaxAttemptsOf(doc))
        {
            Park(doc);
        }
    }

    private int MaxAttemptsOf(JobDocument doc) => doc.MaxAttempts ?? _registry.Find(doc.Kind)?.Options.MaxAttempts ?? new JobKindOptions().MaxAttempts;

    private static void Park(JobDocument doc)
    {
        doc.State = JobState.Parked;
        doc.Due = null;
    }

    /// <summary>Claims due jobs for the free run slots and starts them. With <paramref name="waitForRuns"/> waits until they end.</summary>
    public async Task<int> PumpAsync(bool waitForRuns = false, CancellationToken cancellationToken = default)
    {
        var free = _options.MaxConcurrentRuns - _inFlight.Count;
        if (free <= 0 || _stopping.IsCancellationRequested)
        {
            return 0;
        }

        cancellationToken.ThrowIfCancellationRequested();
        var (claimed, events) = await WriteAsync(() => Claim(free)).ConfigureAwait(false);
        Raise(events);
        var tasks = new List<Task>(claimed.Count);
        foreach (var c in claimed)
        {
            var task = ExecuteAsync(c);
            _inFlight[c.Run.Id] = task;
            tasks.Add(task);
            _ = task.ContinueWith(_ =>
            {
                _inFlight.TryRemove(c.Run.Id, out Task? _);
                Wake();
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        if (waitForRuns)
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }

        return claimed.Count;
    }

    /// <summary>For tests and tools: claims and runs everything due now, waiting for the runs.</summary>
    internal Task<int> RunDueAsync() => PumpAsync(waitForRuns: true);

    private (List<Claimed>, List<JobRunInfo>) Claim(int max)
    {
        var now = NowMs;
        var nowInstant = DateTimeOffset.FromUnixTimeMilliseconds(now);
        var claimed = new List<Claimed>();
        var events = new List<JobRunInfo>();
        // Index range on due: Scheduled jobs due now and Running jobs whose lease expired. Jobs put aside
        // below (no handler, skipped) get a later due, so the range moves on.
        var candidates = Jobs.Find(Query.Between("due", 0L, now), 0, max * 4).Select(JobDocument.FromBson).ToList();
        foreach (var doc in candidates)
        {
            if (claimed.Count >= max)
            {
                break;
            }

            var retry = false;
            if (doc.State == JobState.Running)
            {
                Abandon(doc, now, $"the lease of {doc.LeaseOwner} expired at {JobDocument.Ms(doc.Due):O}; the occurrence runs again", events);
                retry = true;
                if (doc.State != JobState.Scheduled)
                {
                    Save(doc, now);
                    continue;
                }
            }
            else if (doc.State != JobState.Scheduled)
            {
                doc.Due = null;
                Save(doc, now);
                continue;
            }

            var registration = _registry.Find(doc.Kind);
            if (registration is null)
            {
                doc.Due = now + (long)_options.NoHandlerDelay.TotalMilliseconds;
                if (doc.LastOutcome != JobRunOutcome.NoHandler)
                {
                    _logger.LogWarning("Scheduler: job {JobId} of kind {Kind} (owner {Owner}) is due but no handler is registered for the kind; it waits",
                        doc.Id, doc.Kind, doc.Owner);
                }

                doc.LastOutcome = JobRunOutcome.NoHandler;
                doc.LastError = $"no handler is registered for kind '{doc.Kind}' (is the owning plugin '{doc.Owner}' active?); the job waits";
                Save(doc, now);
                continue;
            }

            var occurrence = doc.Occurrence ?? doc.Due ?? now;
            if (!retry && doc.Attempt == 0 && doc.Misfire == MisfirePolicy.Skip
                && now - doc.Due!.Value > (long)_options.MisfireThreshold.TotalMilliseconds)
            {
                var skipped = NewRun(doc, occurrence, now);
                skipped.Ended = now;
                skipped.Outcome = JobRunOutcome.Skipped;
                skipped.Error = $"missed by {TimeSpan.FromMilliseconds(now - doc.Due.Value)} (misfire policy Skip)";
                Runs.Insert(skipped.ToBson());
                events.Add(skipped.ToInfo());
                doc.LastRun = now;
                doc.LastOutcome = JobRunOutcome.Skipped;
                doc.LastError = skipped.Error;
                ScheduleNext(doc, ScheduleMath.NextAfter(doc.Schedule, nowInstant), now);
                Save(doc, now);
                continue;
            }

            var timeout = doc.Timeout ?? registration.Options.Timeout;
            var run = NewRun(doc, occurrence, now);
            Runs.Insert(run.ToBson());
            doc.State = JobState.Running;
            doc.LeaseOwner = NodeId;
            doc.LeaseRun = run.Id;
            doc.RunRevision = doc.Revision;
            doc.Occurrence = occurrence;
            doc.Due = now + (long)(timeout + _options.LeaseGrace).TotalMilliseconds;
            Save(doc, now);
            claimed.Add(new Claimed(doc, run, registration, timeout));
        }

        return (claimed, events);
    }

    private RunDocument NewRun(JobDocument doc, long occurrence, long now) => new()
    {
        Id = WritePipeline.NewId(),
        JobId = doc.Id,
        Kind = doc.Kind,
        Owner = doc.Owner,
        Occurrence = occurrence,
        Attempt = doc.Attempt + 1,
        IdempotencyKey = $"{doc.Id}:{occurrence}",
        Node = NodeId,
        Started = now,
        Outcome = JobRunOutcome.Running,
    };

    private async Task ExecuteAsync(Claimed c)
    {
        await Task.Yield();
        var context = new JobExecutionContext
        {
            JobId = c.Job.Id,
            Kind = c.Job.Kind,
            Owner = c.Job.Owner,
            Payload = c.Job.Payload,
            UniqueKey = c.Job.UniqueKey,
            Occurrence = DateTimeOffset.FromUnixTimeMilliseconds(c.Run.Occurrence),
            Attempt = c.Run.Attempt,
            IdempotencyKey = c.Run.IdempotencyKey,
        };
        using var timeout = new CancellationTokenSource(c.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token);
        JobRunOutcome outcome;
        Exception? failure = null;
        try
        {
            var handler = Task.Run(() => c.Registration.Invoke(context, linked.Token), CancellationToken.None);
            await handler.WaitAsync(linked.Token).ConfigureAwait(false);
            outcome = JobRunOutcome.Succeeded;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            await ReleaseAsync(c).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            outcome = JobRunOutcome.TimedOut;
            failure = new TimeoutException($"job kind '{c.Job.Kind}' did not finish within {c.Timeout} and was cancelled");
        }
        catch (Exception ex)
        {
            outcome = JobRunOutcome.Failed;
            failure = ex;
        }

        Report(c, failure);
        var error = failure is null ? null : failure is TimeoutException ? failure.Message : $"{failure.GetType().Name}: {failure.Message}";
        if (failure is not null)
        {
            _logger.LogWarning(failure, "Scheduler: job {JobId} ({Kind}, owner {Owner}) attempt {Attempt} {Outcome}", c.Job.Id, c.Job.Kind,
                c.Registration.OwnerId, c.Run.Attempt, outcome);
        }

        try
        {
            var ended = await CompleteAsync(c, outcome, error).ConfigureAwait(false);
            Raise([ended]);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or LiteException or StoreException)
        {
            // The store is closing or failed: the lease expires and the occurrence runs again (at-least-once).
            _logger.LogError(ex, "Scheduler: the end of run {RunId} of job {JobId} could not be recorded", c.Run.Id, c.Job.Id);
        }
    }

    /// <summary>
    /// Records the end of a run. Ends that arrive together are written in one transaction (group commit),
    /// so a burst of short runs costs one durable write per batch, not one per run.
    /// </summary>
    private Task<JobRunInfo> CompleteAsync(Claimed c, JobRunOutcome outcome, string? error)
    {
        var done = new TaskCompletionSource<JobRunInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        bool flush;
        lock (_completionGate)
        {
            _pendingCompletions.Add(new PendingCompletion(c, outcome, error, done));
            flush = !_completionFlushing;
            _completionFlushing = true;
        }

        if (flush)
        {
            _ = FlushCompletionsAsync();
        }

        return done.Task;
    }

    private async Task FlushCompletionsAsync()
    {
        while (true)
        {
            List<PendingCompletion> batch;
            lock (_completionGate)
            {
                if (_pendingCompletions.Count == 0)
                {
                    _completionFlushing = false;
                    return;
                }

                batch = _pendingCompletions;
                _pendingCompletions = [];
            }

            try
            {
                var ended = await WriteAsync(() => batch.Select(p => Complete(p.Claimed, p.Outcome, p.Error)).ToList()).ConfigureAwait(false);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(ended[i]);
                }
            }
            catch (Exception) when (batch.Count > 1)
            {
                // One end could not be written: the batch rolled back; write them one by one so the others are kept.
                foreach (var p in batch)
                {
                    try
                    {
                        p.Done.TrySetResult(await WriteAsync(() => Complete(p.Claimed, p.Outcome, p.Error)).ConfigureAwait(false));
                    }
                    catch (Exception ex)
                    {
                        p.Done.TrySetException(ex);
                    }
                }
            }
            catch (Exception ex)
            {
                batch[0].Done.TrySetException(ex);
            }
        }
    }

    private sealed record PendingCompletion(Claimed Claimed, JobRunOutcome Outcome, string? Error, TaskCompletionSource<JobRunInfo> Done);

    private void Report(Claimed c, Exception? failure)
    {
        var name = "job:" + c.Job.Kind;
        foreach (var observer in Observers)
        {
            try
            {
                if (failure is null)
                {
                    observer.OnHandlerSucceeded(c.Registration.OwnerId, name);
                }
                else
                {
                    observer.OnHandlerFailed(c.Registration.OwnerId, name, failure);
                }
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Scheduler: a fault observer threw");
            }
        }
    }

    private JobRunInfo Complete(Claimed c, JobRunOutcome outcome, string? error)
    {
        var now = NowMs;
        var run = Runs.FindById(c.Run.Id) is { } r ? RunDocument.FromBson(r) : c.Run;
        run.Ended = now;
        run.Outcome = outcome;
        run.Error = error;
        var doc = Load(c.Job.Id);
        if (doc is null || doc.State != JobState.Running || doc.LeaseRun != c.Run.Id)
        {
            // The lease was lost (expired and taken over): this result must not change the job.
            run.Error = (error is null ? "" : error + "; ") + "the lease had been lost, the result was not applied to the job";
            Runs.Upsert(run.ToBson());
            return run.ToInfo();
        }

        Runs.Upsert(run.ToBson());
        doc.LeaseOwner = doc.LeaseRun = null;
        doc.LastRun = now;
        doc.LastOutcome = outcome;
        doc.LastError = error;
        doc.RunCount++;
        var nowInstant = DateTimeOffset.FromUnixTimeMilliseconds(now);
        var rescheduled = doc.Revision != doc.RunRevision;
        if (outcome == JobRunOutcome.Succeeded || rescheduled)
        {
            doc.Attempt = 0;
            var next = rescheduled
                ? ScheduleMath.NextFrom(doc.Schedule, nowInstant)
                : ScheduleMath.NextAfter(doc.Schedule, DateTimeOffset.FromUnixTimeMilliseconds(Math.Max(doc.Occurrence ?? now, now)));
            ScheduleNext(doc, next, now);
        }
        else
        {
            doc.Attempt++;
            if (doc.Attempt >= MaxAttemptsOf(doc))
            {
                Park(doc);
                _logger.LogError("Scheduler: job {JobId} ({Kind}) parked after {Attempts} attempts: {Error}", doc.Id, doc.Kind, doc.Attempt, error);
            }
            else
            {
                doc.State = JobState.Scheduled;
                doc.Due = now + (long)ScheduleMath.Backoff(c.Registration.Options, doc.Attempt).TotalMilliseconds;
            }
        }

        if (doc.Requested is { } requested)
        {
            doc.Requested = null;
            if (requested == JobState.Cancelled && doc.State != JobState.Completed)
            {
                EndOrRequest(doc, JobState.Cancelled, now);
            }
            else if (requested == JobState.Paused && doc.State == JobState.Scheduled)
            {
                EndOrRequest(doc, JobState.Paused, now);
            }
        }

        Save(doc, now);
        PruneRuns(doc.Id);
        return run.ToInfo();
    }

    /// <summary>Shutdown during a run: the occurrence goes back to Scheduled (same attempt) and runs at the next start.</summary>
    private async Task ReleaseAsync(Claimed c)
    {
        try
        {
            await WriteAsync(() =>
            {
                var now = NowMs;
                if (Runs.FindById(c.Run.Id) is { } r)
                {
                    var run = RunDocument.FromBson(r);
                    run.Ended = now;
                    run.Outcome = JobRunOutcome.Abandoned;
                    run.Error = "the engine stopped during the run; the occurrence runs again";
                    Runs.Update(run.ToBson());
                }

                var doc = Load(c.Job.Id);
                if (doc is not null && doc.State == JobState.Running && doc.LeaseRun == c.Run.Id)
                {
                    doc.LeaseOwner = doc.LeaseRun = null;
                    doc.State = JobState.Scheduled;
                    doc.Due = now;
                    if (doc.Requested is { } requested)
                    {
                        doc.Requested = null;
                        EndOrRequest(doc, requested, now);
                    }

                    Save(doc, now);
                }

                return true;
            }).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or LiteException or StoreException)
        {
            _logger.LogWarning(ex, "Scheduler: run {RunId} could not be released at shutdown; it is taken back at the next start", c.Run.Id);
        }
    }

    private void PruneRuns(string jobId)
    {
        var ids = Runs.Find(Query.EQ("job", jobId)).Select(d => d["_id"].AsString).ToList();
        if (ids.Count <= _options.RunHistoryPerJob)
        {
            return;
        }

        ids.Sort(StringComparer.Ordinal);
        foreach (var id in ids.Take(ids.Count - _options.RunHistoryPerJob))
        {
            Runs.Delete(id);
        }
    }

    /// <summary>Removes completed and cancelled jobs (and their runs) older than the retention.</summary>
    public Task<int> PurgeEndedAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WriteAsync(() =>
        {
            var cutoff = NowMs - (long)_options.EndedJobRetention.TotalMilliseconds;
            var removed = 0;
            foreach (var state in new[] { nameof(JobState.Completed), nameof(JobState.Cancelled) })
            {
                foreach (var doc in Jobs.Find(Query.EQ("state", state)).Select(JobDocument.FromBson).Where(d => d.Ended < cutoff).ToList())
                {
                    Runs.DeleteMany(Query.EQ("job", doc.Id));
                    Jobs.Delete(doc.Id);
                    removed++;
                }
            }

            return removed;
        });
    }

    /// <summary>
    /// How long the loop may sleep: until the next due job, at most the poll interval. While every run slot
    /// is busy it is the poll interval: the end of a run wakes the loop (<see cref="Wake"/>), so overdue jobs
    /// waiting for a slot do not make the loop spin.
    /// </summary>
    public TimeSpan NextDelay()
    {
        if (_inFlight.Count >= _options.MaxConcurrentRuns)
        {
            return _options.PollInterval;
        }

        var now = NowMs;
        var next = Jobs.Find(Query.GT("due", 0L), 0, 1).FirstOrDefault();
        if (next is null)
        {
            return _options.PollInterval;
        }

        var ms = Math.Clamp(next["due"].AsInt64 - now, 0, (long)_options.PollInterval.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms);
    }

    /// <summary>Waits for <paramref name="delay"/> on the injected clock, or less when woken.</summary>
    public async Task WaitAsync(Task wake, TimeSpan delay, CancellationToken cancellationToken)
    {
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sleep = Task.Delay(delay, _time, cts.Token);
        await Task.WhenAny(wake, sleep).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>The wake signal to wait on; take it before pumping so that no wake is lost.</summary>
    public Task WakeSignal => Volatile.Read(ref _wake).Task;

    /// <summary>Cancels runs in progress (they go back to Scheduled) and waits for them, at most <paramref name="wait"/>.</summary>
    public async Task StopRunsAsync(TimeSpan wait)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        var running = _inFlight.Values.ToArray();
        if (running.Length > 0)
        {
            await Task.WhenAny(Task.WhenAll(running), Task.Delay(wait, TimeProvider.System)).ConfigureAwait(false);
        }
    }

    private void Raise(IEnumerable<JobRunInfo> events)
    {
        foreach (var e in events)
        {
            try
            {
                RunEnded?.Invoke(e);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Scheduler: a RunEnded subscriber threw");
            }
        }
    }

    /// <summary>Transactions written so far (tests and benchmarks).</summary>
    internal long WriteCount => Interlocked.Read(ref _writes);

    private Task<T> WriteAsync<T>(Func<T> work)
    {
        Interlocked.Increment(ref _writes);
        return CoreDatabaseSeam.WriteAsync(_db, work);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _registry.Registered -= _onRegistered;
            _stopping.Cancel();
            _stopping.Dispose();
        }
    }
}

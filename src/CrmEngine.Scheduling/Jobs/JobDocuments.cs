using CrmEngine.Abstractions.Scheduling;
using LiteDB;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>A job as stored in <c>_jobs</c>. Instants are unix milliseconds (Int64) so the due index is exact.</summary>
internal sealed class JobDocument
{
    public string Id { get; set; } = "";
    public string Owner { get; set; } = "";
    public string Kind { get; set; } = "";
    public string? Payload { get; set; }
    public string? UniqueKey { get; set; }
    /// <summary>Owner + U+0001 + key while the job is live; null once it ended or was replaced (indexed).</summary>
    public string? LiveKey { get; set; }
    public JobState State { get; set; }
    public JobSchedule Schedule { get; set; } = JobSchedule.Once(DateTimeOffset.UnixEpoch);
    public MisfirePolicy Misfire { get; set; }
    public int? MaxAttempts { get; set; }
    public TimeSpan? Timeout { get; set; }
    /// <summary>Scheduled: next run; Running: lease expiry; otherwise null (indexed: the only way due jobs are found).</summary>
    public long? Due { get; set; }
    public long? Occurrence { get; set; }
    public int Attempt { get; set; }
    /// <summary>Bumped by reschedule and resume; a run started under an older revision does not compute the next occurrence.</summary>
    public int Revision { get; set; }
    public int RunRevision { get; set; }
    /// <summary>Cancelled or Paused, asked for while a run was in progress; applied when it ends.</summary>
    public JobState? Requested { get; set; }
    public string? LeaseOwner { get; set; }
    public string? LeaseRun { get; set; }
    public long Created { get; set; }
    public long Updated { get; set; }
    public long? Ended { get; set; }
    public long? LastRun { get; set; }
    public JobRunOutcome? LastOutcome { get; set; }
    public string? LastError { get; set; }
    public long RunCount { get; set; }

    public bool IsLive => State is JobState.Scheduled or JobState.Running or JobState.Paused or JobState.Parked;

    public static string LiveKeyOf(string owner, string key) => owner + "\u0001" + key;

    public BsonDocument ToBson()
    {
        var d = new BsonDocument
        {
            ["_id"] = Id,
            ["owner"] = Owner,
            ["kind"] = Kind,
            ["state"] = State.ToString(),
            ["stype"] = Schedule.Type.ToString(),
            ["misfire"] = Misfire.ToString(),
            ["attempt"] = Attempt,
            ["rev"] = Revision,
            ["runRev"] = RunRevision,
            ["created"] = Created,
            ["updated"] = Updated,
            ["runCount"] = RunCount,
        };
        Put(d, "payload", Payload);
        Put(d, "key", UniqueKey);
        Put(d, "liveKey", LiveKey);
        Put(d, "at", Schedule.At?.ToUnixTimeMilliseconds());
        Put(d, "after", Schedule.After?.Ticks);
        Put(d, "cron", Schedule.Cron);
        Put(d, "tz", Schedule.TimeZone);
        Put(d, "interval", Schedule.Interval?.Ticks);
        Put(d, "maxAttempts", MaxAttempts);
        Put(d, "timeout", Timeout?.Ticks);
        Put(d, "due", Due);
        Put(d, "occ", Occurrence);
        Put(d, "requested", Requested?.ToString());
        Put(d, "leaseOwner", LeaseOwner);
        Put(d, "leaseRun", LeaseRun);
        Put(d, "ended", Ended);
        Put(d, "lastRun", LastRun);
        Put(d, "lastOutcome", LastOutcome?.ToString());
        Put(d, "lastError", LastError);
        // Indexed: the kind, only while the job waits for a handler; registering the kind finds exactly these.
        Put(d, "waiting", State == JobState.Scheduled && LastOutcome == JobRunOutcome.NoHandler ? Kind : null);
        return d;
    }

    public static JobDocument FromBson(BsonDocument d) => new()
    {
        Id = d["_id"].AsString,
        Owner = d["owner"].AsString,
        Kind = d["kind"].AsString,
        Payload = Str(d, "payload"),
        UniqueKey = Str(d, "key"),
        LiveKey = Str(d, "liveKey"),
        State = Enum.Parse<JobState>(d["state"].AsString),
        Schedule = new JobSchedule
        {
            Type = Enum.Parse<JobScheduleType>(d["stype"].AsString),
            At = Long(d, "at") is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null,
            After = Long(d, "after") is { } after ? TimeSpan.FromTicks(after) : null,
            Cron = Str(d, "cron"),
            TimeZone = Str(d, "tz"),
            Interval = Long(d, "interval") is { } iv ? TimeSpan.FromTicks(iv) : null,
        },
        Misfire = Enum.Parse<MisfirePolicy>(d["misfire"].AsString),
        MaxAttempts = d.TryGetValue("maxAttempts", out var ma) && !ma.IsNull ? ma.AsInt32 : null,
        Timeout = Long(d, "timeout") is { } to ? TimeSpan.FromTicks(to) : null,
        Due = Long(d, "due"),
        Occurrence = Long(d, "occ"),
        Attempt = d["attempt"].AsInt32,
        Revision = d["rev"].AsInt32,
        RunRevision = d["runRev"].AsInt32,
        Requested = Str(d, "requested") is { } rq ? Enum.Parse<JobState>(rq) : null,
        LeaseOwner = Str(d, "leaseOwner"),
        LeaseRun = Str(d, "leaseRun"),
        Created = d["created"].AsInt64,
        Updated = d["updated"].AsInt64,
        Ended = Long(d, "ended"),
        LastRun = Long(d, "lastRun"),
        LastOutcome = Str(d, "lastOutcome") is { } lo ? Enum.Parse<JobRunOutcome>(lo) : null,
        LastError = Str(d, "lastError"),
        RunCount = d["runCount"].AsInt64,
    };

    public JobInfo ToInfo() => new()
    {
        Id = Id,
        Owner = Owner,
        Kind = Kind,
        Schedule = Schedule,
        State = State,
        Payload = Payload,
        UniqueKey = UniqueKey,
        Misfire = Misfire,
        DueAt = Ms(Due),
        Occurrence = Ms(Occurrence),
        Attempt = Attempt,
        MaxAttempts = MaxAttempts,
        Timeout = Timeout,
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(Created),
        UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(Updated),
        LastRunAt = Ms(LastRun),
        LastOutcome = LastOutcome,
        LastError = LastError,
        LeaseOwner = LeaseOwner,
        RunCount = RunCount,
    };

    internal static DateTimeOffset? Ms(long? value) => value is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;

    internal static void Put(BsonDocument d, string name, string? value)
    {
        if (value is not null)
        {
            d[name] = value;
        }
    }

    internal static void Put(BsonDocument d, string name, long? value)
    {
        if (value is { } v)
        {
            d[name] = v;
        }
    }

    internal static void Put(BsonDocument d, string name, int? value)
    {
        if (value is { } v)
        {
            d[name] = v;
        }
    }

    internal static string? Str(BsonDocument d, string name) => d.TryGetValue(name, out var v) && v.IsString ? v.AsString : null;

    internal static long? Long(BsonDocument d, string name) => d.TryGetValue(name, out var v) && v.IsNumber ? v.AsInt64 : null;
}

/// <summary>One run as stored in <c>_job_runs</c>.</summary>
internal sealed class RunDocument
{
    public string Id { get; set; } = "";
    public string JobId { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Owner { get; set; } = "";
    public long Occurrence { get; set; }
    public int Attempt { get; set; }
    public string IdempotencyKey { get; set; } = "";
    public string Node { get; set; } = "";
    public long Started { get; set; }
    public long? Ended { get; set; }
    public JobRunOutcome Outcome { get; set; }
    public string? Error { get; set; }

    public BsonDocument ToBson()
    {
        var d = new BsonDocument
        {
            ["_id"] = Id,
            ["job"] = JobId,
            ["kind"] = Kind,
            ["owner"] = Owner,
            ["occ"] = Occurrence,
            ["attempt"] = Attempt,
            ["ikey"] = IdempotencyKey,
            ["node"] = Node,
            ["started"] = Started,
            ["outcome"] = Outcome.ToString(),
        };
        JobDocument.Put(d, "ended", Ended);
        JobDocument.Put(d, "error", Error);
        return d;
    }

    public static RunDocument FromBson(BsonDocument d) => new()
    {
        Id = d["_id"].AsString,
        JobId = d["job"].AsString,
        Kind = d["kind"].AsString,
        Owner = d["owner"].AsString,
        Occurrence = d["occ"].AsInt64,
        Attempt = d["attempt"].AsInt32,
        IdempotencyKey = d["ikey"].AsString,
        Node = d["node"].AsString,
        Started = d["started"].AsInt64,
        Ended = JobDocument.Long(d, "ended"),
        Outcome = Enum.Parse<JobRunOutcome>(d["outcome"].AsString),
        Error = JobDocument.Str(d, "error"),
    };

    public JobRunInfo ToInfo() => new()
    {
        Id = Id,
        JobId = JobId,
        Kind = Kind,
        Owner = Owner,
        Occurrence = DateTimeOffset.FromUnixTimeMilliseconds(Occurrence),
        Attempt = Attempt,
        IdempotencyKey = IdempotencyKey,
        Node = Node,
        StartedAt = DateTimeOffset.FromUnixTimeMilliseconds(Started),
        EndedAt = JobDocument.Ms(Ended),
        Outcome = Outcome,
        Error = Error,
    };
}

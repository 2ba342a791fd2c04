using System.Diagnostics;
using System.Globalization;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Scheduling.Jobs;
using LiteDB;

// Usage: dotnet run -c Release --project bench/CrmEngine.Scheduling.Bench -- [drainJobs] [idleJobs] [idleSeconds]
var inv = CultureInfo.InvariantCulture;
var drainJobs = args.Length > 0 ? int.Parse(args[0], inv) : 100_000;
var idleJobs = args.Length > 1 ? int.Parse(args[1], inv) : 1_000_000;
var idleSeconds = args.Length > 2 ? int.Parse(args[2], inv) : 30;
var root = Path.Combine(Path.GetTempPath(), "crm-scheduling-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(root);
Console.WriteLine(string.Create(inv,
    $"scheduler bench: {drainJobs:N0} jobs to drain, {idleJobs:N0} idle jobs, {idleSeconds} s idle window, {Environment.ProcessorCount} cores"));
try
{
    await Bench.DrainAsync(Path.Combine(root, "drain"), drainJobs, [4, 32]);
    await Bench.IdleAsync(Path.Combine(root, "idle"), idleJobs, idleSeconds);
    await Bench.IdleAsync(Path.Combine(root, "empty"), 0, idleSeconds);
}
finally
{
    Directory.Delete(root, recursive: true);
}

return 0;

internal static class Bench
{
    private const string Kind = "bench.noop";
    private static int s_handled;

    /// <summary>The handler every line runs: reads the JSON payload and counts.</summary>
    private static Task Handler(JobExecutionContext context, CancellationToken cancellationToken)
    {
        _ = context.GetPayload<Payload>();
        Interlocked.Increment(ref s_handled);
        return Task.CompletedTask;
    }

    private static void Row(string what, int count, TimeSpan elapsed, string? note = null) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {what,-52} {elapsed.TotalSeconds,8:0.000} s  {count / Math.Max(elapsed.TotalSeconds, 1e-9),10:N0} jobs/s{(note is null ? "" : "  " + note)}"));

    public static async Task DrainAsync(string folder, int n, int[] concurrencies)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"drain: {n:N0} one-shot jobs falling due together"));

        // Baseline: a bare loop calling the same handler with the same contexts.
        var contexts = Enumerable.Range(0, n).Select(i => new JobExecutionContext
        {
            JobId = i.ToString(CultureInfo.InvariantCulture), Kind = Kind, Owner = "core", Payload = $"{{\"n\":{i}}}",
            Occurrence = DateTimeOffset.UnixEpoch, Attempt = 1, IdempotencyKey = $"{i}:0",
        }).ToList();
        var sw = Stopwatch.StartNew();
        foreach (var c in contexts)
        {
            await Handler(c, CancellationToken.None);
        }

        Row("baseline: bare loop calling the handler", n, sw.Elapsed);
        foreach (var batch in concurrencies)
        {
            BareLiteDb(folder + "-bare" + batch, n, batch, printInsert: batch == concurrencies[0]);
        }

        foreach (var runs in concurrencies)
        {
            await EngineAsync(folder + runs, n, runs, first: runs == concurrencies[0]);
        }
    }

    /// <summary>Bare LiteDB doing the scheduler's storage work per job: insert; find due by index, mark running; mark done, insert a run.</summary>
    private static void BareLiteDb(string folder, int n, int batch, bool printInsert)
    {
        Directory.CreateDirectory(folder);
        using var bare = new LiteDatabase($"Filename={Path.Combine(folder, "bare.db")};Connection=direct");
        var jobs = bare.GetCollection("_jobs");
        var runs = bare.GetCollection("_job_runs");
        jobs.EnsureIndex("ix_due", "$.due");
        runs.EnsureIndex("ix_job", "$.job");
        var due = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var docs = Enumerable.Range(0, n).Select(i => new BsonDocument
        {
            ["_id"] = ObjectId.NewObjectId().ToString(), ["owner"] = "core", ["kind"] = Kind, ["state"] = "Scheduled",
            ["payload"] = $"{{\"n\":{i}}}", ["due"] = due, ["occ"] = due, ["attempt"] = 0,
        }).ToList();
        var sw = Stopwatch.StartNew();
        jobs.InsertBulk(docs, 5000);
        var inserted = sw.Elapsed;
        sw.Restart();
        while (true)
        {
            bare.BeginTrans();
            var claimed = jobs.Find(Query.Between("due", 0L, due), 0, batch).ToList();
            foreach (var d in claimed)
            {
                d["state"] = "Running";
                d["due"] = due + 60_000;
                jobs.Update(d);
            }

            bare.Commit();
            if (claimed.Count == 0)
            {
                break;
            }

            bare.BeginTrans();
            foreach (var d in claimed)
            {
                d["state"] = "Completed";
                d["due"] = BsonValue.Null;
                jobs.Update(d);
                runs.Insert(new BsonDocument { ["job"] = d["_id"], ["outcome"] = "Succeeded", ["started"] = due, ["ended"] = due });
            }

            bare.Commit();
        }

        if (printInsert)
        {
            Row("baseline: bare LiteDB insert (InsertBulk)", n, inserted);
        }

        Row($"baseline: bare LiteDB claim+end, {batch} per commit", n, sw.Elapsed, "(2 commits per batch)");
    }

    /// <summary>The engine: the real store (one writer thread, durable flush) and the loop of SchedulerService.</summary>
    private static async Task EngineAsync(string folder, int n, int runs, bool first)
    {
        Directory.CreateDirectory(folder);
        using var db = new CrmDatabase(new StoreOptions { DataDirectory = folder });
        var registry = new JobHandlerRegistry();
        using var scheduler = new JobScheduler(db, registry, new SchedulerOptions { NodeId = "bench", MaxConcurrentRuns = runs });
        using var kind = registry.Register(new JobKindRegistration("core", Kind, new JobKindOptions { Timeout = TimeSpan.FromMinutes(1) }, Handler));
        var sw = Stopwatch.StartNew();
        if (first)
        {
            // The floor of the engine's store: one durable write after another (a small change each).
            const int probes = 200;
            var lite = CoreDatabaseSeam.Database(db);
            for (var i = 0; i < probes; i++)
            {
                await CoreDatabaseSeam.WriteAsync(db, () => lite.GetCollection("_probe").Upsert(new BsonDocument { ["_id"] = 1, ["n"] = i }));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  baseline: one durable store write (one small update)   {(sw.Elapsed / probes).TotalMilliseconds,8:0.00} ms per write, one after the other"));
        }

        var core = scheduler.ForOwner("core");
        var at = DateTimeOffset.UtcNow.AddSeconds(-1);
        s_handled = 0;
        sw.Restart();
        var inFlight = new List<Task>(256);
        for (var i = 0; i < n; i++)
        {
            inFlight.Add(core.ScheduleAsync(new JobRequest { Kind = Kind, Schedule = JobSchedule.Once(at), Payload = $"{{\"n\":{i}}}" }));
            if (inFlight.Count == 256)
            {
                await Task.WhenAll(inFlight);
                inFlight.Clear();
            }
        }

        await Task.WhenAll(inFlight);
        if (first)
        {
            Row("engine: ScheduleAsync, 256 concurrent callers", n, sw.Elapsed, "(set-up)");
        }

        var writesBefore = scheduler.WriteCount;
        sw.Restart();
        while (Volatile.Read(ref s_handled) < n)
        {
            // The loop of SchedulerService: take the wake signal, pump, sleep until woken or due.
            var wake = scheduler.WakeSignal;
            await scheduler.PumpAsync();
            await scheduler.WaitAsync(wake, scheduler.NextDelay(), CancellationToken.None);
        }

        await scheduler.StopRunsAsync(TimeSpan.FromSeconds(30));
        var drained = sw.Elapsed;
        var health = await scheduler.HealthAsync();
        Row($"engine: scheduler drain, MaxConcurrentRuns={runs}", n, drained,
            string.Create(CultureInfo.InvariantCulture, $"({scheduler.WriteCount - writesBefore:N0} durable writes; {health.Due} due left)"));
    }

    public static async Task IdleAsync(string folder, int n, int seconds)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"idle: scheduler holding {n:N0} future jobs{(n == 0 ? " (baseline)" : " (due in about a year)")}, poll interval 1 s"));
        Directory.CreateDirectory(folder);
        if (n > 0)
        {
            await WriteFutureJobsAsync(folder, n);
        }

        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpuStart = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        using var db = new CrmDatabase(new StoreOptions { DataDirectory = folder });
        using var scheduler = new JobScheduler(db, new JobHandlerRegistry(), new SchedulerOptions { NodeId = "bench" });
        await scheduler.RecoverAsync();
        var health = await scheduler.HealthAsync();
        var startup = sw.Elapsed;
        process.Refresh();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  start-up (open store, indexes, recover, health)        {startup.TotalMilliseconds,8:0} ms  ({(process.TotalProcessorTime - cpuStart).TotalMilliseconds:0} ms CPU; {health.Due} due, next {health.NextDue:yyyy-MM-dd})"));

        GC.Collect();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        sw.Restart();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var polls = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var wake = scheduler.WakeSignal;
                await scheduler.PumpAsync(cancellationToken: stop.Token);
                polls++;
                await scheduler.WaitAsync(wake, scheduler.NextDelay(), stop.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }

        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  idle CPU ({polls} polls in {sw.Elapsed.TotalSeconds:0} s)                         {cpu.TotalMilliseconds * 60 / sw.Elapsed.TotalSeconds,8:0.0} ms CPU per minute ({cpu.TotalMilliseconds / Math.Max(polls, 1):0.00} ms per poll)"));
    }

    /// <summary>Set-up, not a figure: the jobs written straight into the store in the scheduler's own format.</summary>
    private static async Task WriteFutureJobsAsync(string folder, int n)
    {
        var sw = Stopwatch.StartNew();
        using var setup = new CrmDatabase(new StoreOptions { DataDirectory = folder });
        using (new JobScheduler(setup, new JobHandlerRegistry(), new SchedulerOptions { NodeId = "bench" }))
        {
            // Creates the collections and indexes.
        }

        var jobs = CoreDatabaseSeam.Database(setup).GetCollection(JobScheduler.JobsCollection);
        var now = DateTimeOffset.UtcNow;
        var random = new Random(42);
        const int chunk = 50_000;
        for (var start = 0; start < n; start += chunk)
        {
            var count = Math.Min(chunk, n - start);
            var docs = Enumerable.Range(start, count).Select(_ =>
            {
                var due = now.AddDays(365).AddSeconds(random.Next(0, 86_400 * 30)).ToUnixTimeMilliseconds();
                return new JobDocument
                {
                    Id = ObjectId.NewObjectId().ToString(), Owner = "core", Kind = "bench.later", State = JobState.Scheduled,
                    Schedule = JobSchedule.Once(DateTimeOffset.FromUnixTimeMilliseconds(due)), Due = due, Occurrence = due,
                    Created = now.ToUnixTimeMilliseconds(), Updated = now.ToUnixTimeMilliseconds(),
                }.ToBson();
            }).ToList();
            await CoreDatabaseSeam.WriteAsync(setup, () => jobs.InsertBulk(docs, count));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  (set-up: {n:N0} jobs written in {sw.Elapsed.TotalSeconds:0.0} s, file {new FileInfo(setup.FilePath).Length / 1048576.0:0} MiB)"));
    }
}

internal sealed record Payload(int N);

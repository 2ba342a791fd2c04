using System.Collections.Concurrent;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Time.Testing;

namespace CrmEngine.Scheduling.Tests.Jobs;

/// <summary>A real engine database (LiteDB file in a temporary folder) with a scheduler on a fake clock.</summary>
internal sealed class TestScheduler : IDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 11, 23, 8, 0, 0, TimeSpan.Zero);   // a Monday
    private readonly bool _ownsFolder;
    private readonly bool _ownsDatabase;

    public TestScheduler(string? folder = null, FakeTimeProvider? time = null, string node = "node-a", SchedulerOptions? options = null,
        JobHandlerRegistry? registry = null, CrmDatabase? database = null)
    {
        _ownsFolder = folder is null && database is null;
        Folder = folder ?? Path.Combine(Path.GetTempPath(), "crm-scheduling-tests", Guid.NewGuid().ToString("N"));
        Time = time ?? new FakeTimeProvider(Start);
        Options = options ?? new SchedulerOptions();
        Options.NodeId = node;
        _ownsDatabase = database is null;
        Database = database ?? new CrmDatabase(new StoreOptions { DataDirectory = Folder, FileName = "crm.db" }, Time);
        Registry = registry ?? new JobHandlerRegistry();
        Scheduler = new JobScheduler(Database, Registry, Options, Time, null, () => [Observer]);
        Admin = new JobAdministration(Scheduler);
        Core = Scheduler.ForOwner("core");
    }

    public string Folder { get; }
    public FakeTimeProvider Time { get; }
    public SchedulerOptions Options { get; }
    public CrmDatabase Database { get; }
    public JobHandlerRegistry Registry { get; }
    public JobScheduler Scheduler { get; }
    public JobAdministration Admin { get; }
    public IScheduler Core { get; }
    public RecordingObserver Observer { get; } = new();

    public IDisposable Handle(string kind, Func<JobExecutionContext, CancellationToken, Task> handler, string owner = "core",
        Action<JobKindOptions>? configure = null)
    {
        var options = new JobKindOptions();
        configure?.Invoke(options);
        return Registry.Register(new JobKindRegistration(owner, kind, options, handler));
    }

    /// <summary>A handler that records every context it sees.</summary>
    public ConcurrentQueue<JobExecutionContext> Record(string kind, string owner = "core", Action<JobKindOptions>? configure = null)
    {
        var seen = new ConcurrentQueue<JobExecutionContext>();
        Handle(kind, (ctx, _) =>
        {
            seen.Enqueue(ctx);
            return Task.CompletedTask;
        }, owner, configure);
        return seen;
    }

    public Task<int> RunDue() => Scheduler.RunDueAsync();

    public async Task<JobInfo> Job(string id) => await Scheduler.GetAsync(id) ?? throw new InvalidOperationException("no job " + id);

    public Task<IReadOnlyList<JobRunInfo>> Runs(string id) => Scheduler.RunsAsync(id, 100);

    public void Dispose()
    {
        Scheduler.Dispose();
        if (_ownsDatabase)
        {
            Database.Dispose();
        }

        if (_ownsFolder)
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}

internal sealed class RecordingObserver : IHandlerFaultObserver
{
    public ConcurrentQueue<(string Owner, string Handler, Exception? Error)> Calls { get; } = new();

    public void OnHandlerSucceeded(string ownerId, string handlerName) => Calls.Enqueue((ownerId, handlerName, null));

    public void OnHandlerFailed(string ownerId, string handlerName, Exception error) => Calls.Enqueue((ownerId, handlerName, error));
}

using System.Globalization;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core;
using CrmEngine.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// Usage: harness <data folder> <journal file> seed|run
// The journal gets "boot", "start <key> <attempt>" and "end <key>" lines, each flushed to disk.
if (args.Length != 3)
{
    Console.Error.WriteLine("usage: harness <data folder> <journal file> seed|run");
    return 2;
}

var journal = new Journal(args[1]);
journal.Write($"boot {Environment.ProcessId}");
var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Store:DataDirectory"] = args[0],
    ["Scheduler:NodeId"] = "kill-harness",
    ["Scheduler:PollInterval"] = "00:00:00.200",
    ["Scheduler:MaxConcurrentRuns"] = "4",
}).Build();
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ContentRootPath = args[0] });
builder.Services.AddSingleton(journal);
builder.Services.AddCrmCore(config);
builder.Services.AddCrmScheduling(config);
builder.Services.AddJobHandler<WorkHandler>("harness.work", o => o.Timeout = TimeSpan.FromSeconds(20));
using var host = builder.Build();
await host.StartAsync();
if (args[2] == "seed")
{
    var scheduler = host.Services.GetRequiredService<IScheduler>();
    var now = DateTimeOffset.UtcNow;
    for (var i = 0; i < 40; i++)
    {
        await scheduler.ScheduleAsync(new JobRequest { Kind = "harness.work", Schedule = JobSchedule.Once(now.AddMilliseconds(100 * i)), Payload = "once" });
    }

    await scheduler.ScheduleAsync(new JobRequest { Kind = "harness.work", Schedule = JobSchedule.CronExpression("* * * * * *"), Payload = "cron", Misfire = MisfirePolicy.Skip });
}

Console.WriteLine("ready");
await host.WaitForShutdownAsync();
return 0;

internal sealed class Journal(string path)
{
    private readonly Lock _gate = new();

    public void Write(string line)
    {
        lock (_gate)
        {
            using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            var bytes = System.Text.Encoding.UTF8.GetBytes(line + "\n");
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
    }
}

internal sealed class WorkHandler(Journal journal) : IJobHandler
{
    public async Task ExecuteAsync(JobExecutionContext context, CancellationToken cancellationToken)
    {
        journal.Write(string.Create(CultureInfo.InvariantCulture, $"start {context.IdempotencyKey} {context.Attempt} {context.Payload}"));
        await Task.Delay(Random.Shared.Next(30, 120), cancellationToken);
        journal.Write($"end {context.IdempotencyKey}");
    }
}

using System.Globalization;
using System.Text;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Fixture.Ticker;

/// <summary>Bound from <c>Plugins:fixture.ticker</c>.</summary>
public sealed class TickerOptions
{
    /// <summary>Every run appends "<c>idempotency-key attempt pid</c>" here, flushed to disk. Nothing is scheduled without it.</summary>
    public string? RunsFile { get; set; }

    /// <summary>Period of the recurring job, in milliseconds (the scheduler's minimum is one second).</summary>
    public int IntervalMilliseconds { get; set; } = 1000;
}

/// <summary>Declares the job kind <c>fixture.tick</c> and schedules one recurring job with a unique key at install.</summary>
public sealed class TickerPlugin : CrmPlugin
{
    public const string Kind = "fixture.tick";
    public const string Key = "ticker";

    public override void ConfigureServices(IPluginBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.BindOptions<TickerOptions>();
        builder.AddJobHandler<TickHandler>(Kind, o =>
        {
            o.Timeout = TimeSpan.FromSeconds(30);
            o.MaxAttempts = 3;
            o.RetryDelay = TimeSpan.FromSeconds(1);
        });
    }

    public override async Task InstallAsync(IPluginContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var options = context.Services.GetRequiredService<IOptions<TickerOptions>>().Value;
        if (string.IsNullOrEmpty(options.RunsFile))
        {
            return;
        }

        var scheduler = context.Services.GetRequiredService<IScheduler>();
        await scheduler.ScheduleAsync(new JobRequest
        {
            Kind = Kind,
            Schedule = JobSchedule.Every(TimeSpan.FromMilliseconds(options.IntervalMilliseconds)),
            UniqueKey = Key,
            UniqueKeyPolicy = UniqueKeyPolicy.KeepExisting,
        }.WithPayload(new TickPayload(options.RunsFile)), cancellationToken);
    }
}

public sealed record TickPayload(string RunsFile);

/// <summary>Appends one line per run; at-least-once, so the line carries the occurrence's idempotency key.</summary>
public sealed class TickHandler : IJobHandler
{
    public Task ExecuteAsync(JobExecutionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var payload = context.GetPayload<TickPayload>() ?? throw new InvalidOperationException("the tick job has no payload");
        var line = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"{context.IdempotencyKey} {context.Attempt} {Environment.ProcessId}\n"));
        using var file = new FileStream(payload.RunsFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.WriteThrough);
        file.Write(line);
        file.Flush(flushToDisk: true);
        return Task.CompletedTask;
    }
}

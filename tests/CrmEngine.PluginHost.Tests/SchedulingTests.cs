using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core;
using CrmEngine.Scheduling;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.PluginHost.Tests;

/// <summary>
/// Plugins and the scheduler wired as the host wires them (AddCrmScheduling after AddCrmPluginHost), with the
/// fixture plugin <c>fixture.ticker</c>: a job kind declared with AddJobHandler and a one-second interval job
/// scheduled at install through the plugin's own IScheduler.
/// </summary>
public sealed class SchedulingTests : IDisposable
{
    private readonly PluginFolders _folders = new();

    public void Dispose() => _folders.Dispose();

    private IHost BuildHost(Dictionary<string, string?> settings)
    {
        settings["Scheduler:PollInterval"] = "00:00:00.100";
        return _folders.BuildRealHost(settings, (services, configuration) => services.AddCrmScheduling(configuration));
    }

    [Fact]
    public async Task A_plugin_job_kind_runs_the_plugins_jobs_while_it_is_active_and_is_removed_when_it_stops()
    {
        _folders.AddBuilt("fixture.ticker");
        var runs = _folders.File1("runs.txt");
        using var host = BuildHost(new() { ["Plugins:fixture.ticker:RunsFile"] = runs });
        await host.StartAsync();
        var registry = host.Services.GetRequiredService<JobHandlerRegistry>();
        Assert.Equal(PluginState.Active, host.Services.GetRequiredService<PluginManager>().Find("fixture.ticker")!.State);
        Assert.Equal("fixture.ticker", registry.Find("fixture.tick")?.OwnerId);

        // Scheduled at install by the plugin, owned by it; it runs on real time.
        var jobs = await host.Services.GetRequiredService<JobAdministration>().ListAsync(new JobQuery { Owner = "fixture.ticker" });
        var job = Assert.Single(jobs);
        Assert.Equal("ticker", job.UniqueKey);
        await Eventually.TrueAsync(() => PluginFolders.ReadLines(runs).Length >= 2, "the plugin's job ran twice");
        Assert.All(PluginFolders.ReadLines(runs), l => Assert.StartsWith(job.Id + ":", l, StringComparison.Ordinal));

        // The core's IScheduler does not see the plugin's job.
        Assert.Null(await host.Services.GetRequiredService<IScheduler>().GetAsync(job.Id));

        await host.StopAsync();
        Assert.Null(registry.Find("fixture.tick"));
        var after = await host.Services.GetRequiredService<JobAdministration>().ShowAsync(job.Id);
        Assert.Equal(JobState.Scheduled, after.Job.State);
    }

    [Fact]
    public async Task Failing_jobs_count_toward_the_plugins_fault_breaker_and_a_malfunctioned_plugin_loses_its_kind_while_its_job_waits()
    {
        _folders.AddBuilt("fixture.ticker");
        // The handler appends to a file in a folder that does not exist: every run throws.
        var runs = Path.Combine(_folders.Root, "missing-folder", "runs.txt");
        using var host = BuildHost(new()
        {
            ["Plugins:fixture.ticker:RunsFile"] = runs,
            ["PluginHost:FailureThreshold"] = "2",
        });
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<PluginManager>();
        var registry = host.Services.GetRequiredService<JobHandlerRegistry>();
        Assert.NotNull(registry.Find("fixture.tick"));

        await Eventually.TrueAsync(() => manager.Find("fixture.ticker")!.State == PluginState.Malfunctioned,
            "two failed job runs marked the plugin Malfunctioned", 30_000);
        Assert.Contains("job:fixture.tick", manager.Find("fixture.ticker")!.Reason, StringComparison.Ordinal);
        await Eventually.TrueAsync(() => registry.Find("fixture.tick") is null, "its job kind was unregistered");

        var admin = host.Services.GetRequiredService<JobAdministration>();
        var job = Assert.Single(await admin.ListAsync(new JobQuery { Owner = "fixture.ticker" }));
        Assert.Contains(job.State, new[] { JobState.Scheduled, JobState.Running, JobState.Parked });
        // The breaker can trip before the scheduler records the second run's outcome: wait for the record.
        IReadOnlyList<JobRunInfo> history = [];
        await Eventually.TrueAsync(async () =>
        {
            (_, history) = await admin.ShowAsync(job.Id);
            return history.Count(r => r.Outcome == JobRunOutcome.Failed) >= 2;
        }, "two failed runs recorded in the job's history");
        Assert.Contains(history, r => r.Error is not null && r.Error.Contains("missing-folder", StringComparison.Ordinal));
        await host.StopAsync();
    }
}

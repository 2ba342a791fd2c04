using System.Collections.Concurrent;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core;
using CrmEngine.Scheduling.Admin;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.Scheduling.Tests.Jobs;

public class HostingTests
{
    internal sealed class Counter
    {
        public ConcurrentQueue<JobExecutionContext> Seen { get; } = new();
        public TaskCompletionSource Ran { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    internal sealed class CountingHandler(Counter counter) : IJobHandler
    {
        public Task ExecuteAsync(JobExecutionContext context, CancellationToken cancellationToken)
        {
            counter.Seen.Enqueue(context);
            counter.Ran.TrySetResult();
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task The_service_wired_with_AddCrmScheduling_runs_a_declared_core_job_on_real_time()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-scheduling-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = folder,
            ["Scheduler:NodeId"] = "test-node",
            ["Calendars:support:TimeZone"] = "Europe/Berlin",
        }).Build();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ContentRootPath = folder });
        builder.Services.AddCrmCore(config);
        builder.Services.AddCrmScheduling(config);
        builder.Services.AddSingleton<Counter>();
        builder.Services.AddJobHandler<CountingHandler>("core.ping");
        try
        {
            using (var host = builder.Build())
            {
                await host.StartAsync();
                var scheduler = host.Services.GetRequiredService<IScheduler>();
                var job = await scheduler.ScheduleAsync(new JobRequest { Kind = "core.ping", Schedule = JobSchedule.Delay(TimeSpan.FromMilliseconds(300)) });
                var counter = host.Services.GetRequiredService<Counter>();
                await counter.Ran.Task.WaitAsync(TimeSpan.FromSeconds(15));
                Assert.Equal(job.Id, Assert.Single(counter.Seen).JobId);
                Assert.Equal("core", job.Owner);
                Assert.Contains("support", host.Services.GetRequiredService<IBusinessCalendars>().Names);

                var control = host.Services.GetRequiredService<SchedulingControl>();
                var health = await control.HealthAsync();
                Assert.Equal("test-node", health.NodeId);
                await host.StopAsync();
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Kinds_declared_in_a_plugin_container_run_under_the_plugin_id_and_stop_with_it()
    {
        using var t = new TestScheduler();
        var pluginServices = new ServiceCollection();
        pluginServices.AddSingleton<Counter>();
        pluginServices.AddJobHandler<CountingHandler>("sales.followup", o => o.MaxAttempts = 2);
        using var provider = pluginServices.BuildServiceProvider();
        var active = true;
        var registration = t.Scheduler.RegisterPluginJobKinds("sales", provider, () => active);
        Assert.Equal("sales", t.Registry.Find("sales.followup")!.OwnerId);
        Assert.Equal(2, t.Registry.Find("sales.followup")!.Options.MaxAttempts);

        var sales = t.Scheduler.ForOwner("sales");
        await sales.ScheduleAsync(new JobRequest { Kind = "sales.followup", Schedule = JobSchedule.Once(TestScheduler.Start) });
        await t.RunDue();
        Assert.Single(provider.GetRequiredService<Counter>().Seen);

        active = false;   // plugin marked Malfunctioned: a run fails and counts against it
        var job = await sales.ScheduleAsync(new JobRequest { Kind = "sales.followup", Schedule = JobSchedule.Once(TestScheduler.Start) });
        await t.RunDue();
        Assert.Contains(t.Observer.Calls, c => c is ("sales", "job:sales.followup", InvalidOperationException));

        registration.Dispose();   // plugin stopped: its jobs wait for a handler
        Assert.Null(t.Registry.Find("sales.followup"));
        t.Time.Advance(TimeSpan.FromHours(1));
        await t.RunDue();
        Assert.Equal(JobRunOutcome.NoHandler, (await t.Job(job.Id)).LastOutcome);
    }

    [Fact]
    public async Task The_control_answers_what_crm_jobs_and_crm_calendars_print()
    {
        using var t = new TestScheduler();
        var calendars = Calendars.BusinessCalendarTests.Load(("Calendars:office:TimeZone", "Europe/Berlin"), ("Calendars:office:Holidays:0", "2026-12-25"));
        var control = new SchedulingControl(t.Admin, calendars, t.Time);
        t.Handle("boom", (_, _) => throw new InvalidOperationException("no route to ERP"), owner: "erpsync", o => o.MaxAttempts = 1);
        var job = await t.Scheduler.ForOwner("erpsync").ScheduleAsync(new JobRequest { Kind = "boom", Schedule = JobSchedule.CronExpression("0 6 * * *", "Europe/Berlin") });
        t.Time.Advance(TimeSpan.FromDays(1));
        await t.RunDue();

        var list = await control.ListJobsAsync("parked", "erpsync", null, null);
        var jobs = Assert.IsAssignableFrom<IReadOnlyList<JobInfo>>(list.Body);
        Assert.Equal(job.Id, Assert.Single(jobs).Id);
        var text = SchedulingText.Jobs(jobs);
        Assert.Contains("Parked", text, StringComparison.Ordinal);
        Assert.Contains("cron '0 6 * * *' (Europe/Berlin)", text, StringComparison.Ordinal);

        var shown = await control.ShowJobAsync(job.Id);
        var details = SchedulingText.Job(Assert.IsType<JobDetails>(shown.Body));
        Assert.Contains("InvalidOperationException: no route to ERP", details, StringComparison.Ordinal);

        Assert.Equal(400, (await control.ListJobsAsync("sleeping", null, null, null)).Status);
        Assert.Contains("--state", (await control.ListJobsAsync("sleeping", null, null, null)).Error, StringComparison.Ordinal);
        Assert.Equal(404, (await control.ShowJobAsync("0000")).Status);
        Assert.Equal(409, (await control.ActAsync(job.Id, "resume")).Status);
        Assert.Equal(400, (await control.ActAsync(job.Id, "explode")).Status);
        var retried = await control.ActAsync(job.Id, "retry");
        Assert.Equal(JobState.Scheduled, Assert.IsType<JobDetails>(retried.Body).Job.State);

        var cal = control.ShowCalendar("office", "2026-12-24", 4);
        var calText = SchedulingText.Calendar(Assert.IsType<CalendarPeriods>(cal.Body));
        Assert.Contains("2026-12-24 Thu  09:00-17:00", calText, StringComparison.Ordinal);
        Assert.Contains("2026-12-25 Fri  closed", calText, StringComparison.Ordinal);
        Assert.Contains("2026-12-26 Sat  closed", calText, StringComparison.Ordinal);
        Assert.Contains("open 8 h in 4 days", calText, StringComparison.Ordinal);
        Assert.Equal(404, control.ShowCalendar("nope", null, null).Status);
        Assert.Equal(400, control.ShowCalendar("office", "24.12.2026", null).Status);
    }

    [Fact]
    public void Bad_scheduler_options_are_refused_at_start_naming_the_key()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Scheduler:PollInterval"] = "00:30:00",
            ["Scheduler:MaxConcurrentRuns"] = "0",
        }).Build();
        var services = new ServiceCollection();
        services.AddCrmScheduling(config);
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(
            () => provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<SchedulerOptions>>().Value);
        Assert.Contains("PollInterval", ex.Message, StringComparison.Ordinal);
        Assert.Contains("MaxConcurrentRuns", ex.Message, StringComparison.Ordinal);
    }
}

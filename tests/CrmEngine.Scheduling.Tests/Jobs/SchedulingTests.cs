using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Scheduling.Jobs;

namespace CrmEngine.Scheduling.Tests.Jobs;

public class SchedulingTests
{
    [Fact]
    public async Task A_one_shot_job_runs_once_at_its_instant_with_its_payload_and_the_run_is_recorded()
    {
        using var t = new TestScheduler();
        var seen = t.Record("mail.remind");
        var job = await t.Core.ScheduleAsync(new JobRequest { Kind = "mail.remind", Schedule = JobSchedule.Once(TestScheduler.Start.AddMinutes(10)) }
            .WithPayload(new Reminder("case-7", 3)));
        Assert.Equal(JobState.Scheduled, job.State);
        Assert.Equal(TestScheduler.Start.AddMinutes(10), job.DueAt);

        t.Time.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(0, await t.RunDue());
        Assert.Empty(seen);

        t.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await t.RunDue());
        var ctx = Assert.Single(seen);
        Assert.Equal(new Reminder("case-7", 3), ctx.GetPayload<Reminder>());
        Assert.Equal(1, ctx.Attempt);
        Assert.Equal($"{job.Id}:{TestScheduler.Start.AddMinutes(10).ToUnixTimeMilliseconds()}", ctx.IdempotencyKey);

        var done = await t.Job(job.Id);
        Assert.Equal(JobState.Completed, done.State);
        Assert.Equal(JobRunOutcome.Succeeded, done.LastOutcome);
        Assert.Null(done.DueAt);
        var run = Assert.Single(await t.Runs(job.Id));
        Assert.Equal(JobRunOutcome.Succeeded, run.Outcome);
        Assert.Equal(TestScheduler.Start.AddMinutes(10), run.StartedAt);
        Assert.NotNull(run.EndedAt);
        Assert.Equal("node-a", run.Node);

        t.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, await t.RunDue());
        Assert.Single(seen);
    }

    private sealed record Reminder(string CaseId, int Level);

    [Fact]
    public async Task A_delayed_job_is_due_after_the_delay_from_the_moment_it_was_scheduled()
    {
        using var t = new TestScheduler();
        var seen = t.Record("k");
        t.Time.Advance(TimeSpan.FromMinutes(3));
        var job = await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Delay(TimeSpan.FromMinutes(5)) });
        Assert.Equal(TestScheduler.Start.AddMinutes(8), job.DueAt);
        t.Time.Advance(TimeSpan.FromMinutes(5));
        await t.RunDue();
        Assert.Single(seen);
    }

    [Fact]
    public async Task A_cron_job_in_a_time_zone_keeps_local_time_across_the_dst_change()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 3, 27, 0, 0, 0, TimeSpan.Zero));
        using var t = new TestScheduler(time: time);
        var seen = t.Record("daily");
        var job = await t.Core.ScheduleAsync(new JobRequest { Kind = "daily", Schedule = JobSchedule.CronExpression("0 9 * * *", "Europe/Berlin") });
        var fired = new List<DateTimeOffset>();
        for (var i = 0; i < 4; i++)
        {
            var due = (await t.Job(job.Id)).DueAt!.Value;
            time.SetUtcNow(due);
            Assert.Equal(1, await t.RunDue());
            fired.Add(seen.Last().Occurrence);
        }

        // 09:00 CET = 08:00Z before 29 March, 09:00 CEST = 07:00Z after.
        Assert.Equal(
            [
                new DateTimeOffset(2026, 3, 27, 8, 0, 0, TimeSpan.Zero),
                new DateTimeOffset(2026, 3, 28, 8, 0, 0, TimeSpan.Zero),
                new DateTimeOffset(2026, 3, 29, 7, 0, 0, TimeSpan.Zero),
                new DateTimeOffset(2026, 3, 30, 7, 0, 0, TimeSpan.Zero),
            ], fired.Select(f => f.ToUniversalTime()));
        Assert.Equal(4, seen.Select(s => s.IdempotencyKey).Distinct().Count());
    }

    [Fact]
    public async Task A_recurring_job_after_downtime_runs_once_now_then_keeps_its_grid()
    {
        using var t = new TestScheduler();
        var seen = t.Record("sync");
        var job = await t.Core.ScheduleAsync(new JobRequest { Kind = "sync", Schedule = JobSchedule.Every(TimeSpan.FromMinutes(15)) });
        Assert.Equal(TestScheduler.Start.AddMinutes(15), job.DueAt);

        t.Time.Advance(TimeSpan.FromMinutes(70));   // down: occurrences 08:15, 08:30, 08:45, 09:00 missed
        Assert.Equal(1, await t.RunDue());
        Assert.Equal(1, await t.RunDue() + 1);      // nothing more is due
        var ctx = Assert.Single(seen);
        Assert.Equal(TestScheduler.Start.AddMinutes(15), ctx.Occurrence);
        Assert.Equal(TestScheduler.Start.AddMinutes(75), (await t.Job(job.Id)).DueAt);   // 09:15, on the grid
    }

    [Fact]
    public async Task Misfire_policy_skip_drops_missed_occurrences_and_records_them_as_skipped()
    {
        using var t = new TestScheduler();
        var seen = t.Record("hourly");
        var recurring = await t.Core.ScheduleAsync(new JobRequest { Kind = "hourly", Schedule = JobSchedule.CronExpression("0 * * * *"), Misfire = MisfirePolicy.Skip });
        var once = await t.Core.ScheduleAsync(new JobRequest { Kind = "hourly", Schedule = JobSchedule.Delay(TimeSpan.FromMinutes(30)), Misfire = MisfirePolicy.Skip });

        t.Time.Advance(TimeSpan.FromMinutes(3 * 60 + 30));   // 11:30
        await t.RunDue();
        Assert.Empty(seen);
        var r = await t.Job(recurring.Id);
        Assert.Equal(JobState.Scheduled, r.State);
        Assert.Equal(JobRunOutcome.Skipped, r.LastOutcome);
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero), r.DueAt);
        var o = await t.Job(once.Id);
        Assert.Equal(JobState.Completed, o.State);
        Assert.Equal(JobRunOutcome.Skipped, Assert.Single(await t.Runs(once.Id)).Outcome);

        // A small lateness (below the misfire threshold) is not a misfire.
        t.Time.Advance(TimeSpan.FromMinutes(30) + TimeSpan.FromSeconds(20));
        await t.RunDue();
        Assert.Single(seen);
    }

    [Fact]
    public async Task A_unique_key_replaces_or_keeps_the_existing_job_as_asked_and_is_per_owner()
    {
        using var t = new TestScheduler();
        t.Record("sla");
        var first = await t.Core.ScheduleAsync(new JobRequest { Kind = "sla", Schedule = JobSchedule.Delay(TimeSpan.FromHours(4)), UniqueKey = "sla:case-1", Payload = "a" });
        var kept = await t.Core.ScheduleAsync(new JobRequest
        {
            Kind = "sla", Schedule = JobSchedule.Delay(TimeSpan.FromHours(1)), UniqueKey = "sla:case-1", Payload = "b", UniqueKeyPolicy = UniqueKeyPolicy.KeepExisting,
        });
        Assert.Equal(first.Id, kept.Id);
        Assert.Equal("a", kept.Payload);

        var replaced = await t.Core.ScheduleAsync(new JobRequest { Kind = "sla", Schedule = JobSchedule.Delay(TimeSpan.FromHours(2)), UniqueKey = "sla:case-1", Payload = "c" });
        Assert.NotEqual(first.Id, replaced.Id);
        Assert.Equal(JobState.Cancelled, (await t.Job(first.Id)).State);
        Assert.Equal(replaced.Id, (await t.Core.FindByKeyAsync("sla:case-1"))!.Id);

        var other = await t.Scheduler.ForOwner("service").ScheduleAsync(new JobRequest { Kind = "sla", Schedule = JobSchedule.Delay(TimeSpan.FromHours(2)), UniqueKey = "sla:case-1" });
        Assert.NotEqual(replaced.Id, other.Id);
        Assert.Equal(JobState.Scheduled, (await t.Job(replaced.Id)).State);
    }

    [Fact]
    public async Task Cancel_pause_resume_and_reschedule_change_when_a_job_runs()
    {
        using var t = new TestScheduler();
        var seen = t.Record("k");
        var cancelled = await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Delay(TimeSpan.FromMinutes(5)), Payload = "cancelled" });
        var paused = await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.CronExpression("*/10 * * * *"), Payload = "paused" });
        var moved = await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Delay(TimeSpan.FromMinutes(5)), Payload = "moved" });

        Assert.True(await t.Core.CancelAsync(cancelled.Id));
        Assert.False(await t.Core.CancelAsync(cancelled.Id));
        Assert.True(await t.Core.PauseAsync(paused.Id));
        Assert.True(await t.Core.RescheduleAsync(moved.Id, JobSchedule.Once(TestScheduler.Start.AddHours(1))));

        t.Time.Advance(TimeSpan.FromMinutes(30));
        await t.RunDue();
        Assert.Empty(seen);
        Assert.Equal(JobState.Paused, (await t.Job(paused.Id)).State);

        Assert.True(await t.Core.ResumeAsync(paused.Id));
        Assert.Equal(TestScheduler.Start.AddMinutes(30), (await t.Job(paused.Id)).DueAt);   // next occurrence from now, missed ones not replayed
        await t.RunDue();
        Assert.Equal(["paused"], seen.Select(s => s.Payload));

        t.Time.Advance(TimeSpan.FromMinutes(30));
        await t.RunDue();
        Assert.Equal(["paused", "paused", "moved"], seen.Select(s => s.Payload).OrderBy(p => p == "moved"));
    }

    [Fact]
    public async Task A_failing_handler_is_retried_with_backoff_then_parked_and_a_retry_runs_it_again()
    {
        using var t = new TestScheduler();
        var fail = true;
        var attempts = new List<(int Attempt, string Key, DateTimeOffset At)>();
        t.Handle("erp.push", (ctx, _) =>
        {
            attempts.Add((ctx.Attempt, ctx.IdempotencyKey, t.Time.GetUtcNow()));
            return fail ? throw new InvalidOperationException("ERP said 503") : Task.CompletedTask;
        }, owner: "erpsync", o => { o.MaxAttempts = 3; o.RetryDelay = TimeSpan.FromSeconds(10); });
        var job = await t.Scheduler.ForOwner("erpsync").ScheduleAsync(new JobRequest { Kind = "erp.push", Schedule = JobSchedule.Once(TestScheduler.Start) });

        await t.RunDue();
        Assert.Equal(TestScheduler.Start.AddSeconds(10), (await t.Job(job.Id)).DueAt);
        t.Time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(0, await t.RunDue());
        t.Time.Advance(TimeSpan.FromSeconds(1));
        await t.RunDue();
        Assert.Equal(TestScheduler.Start.AddSeconds(30), (await t.Job(job.Id)).DueAt);   // doubled: 20 s
        t.Time.Advance(TimeSpan.FromSeconds(20));
        await t.RunDue();

        var parked = await t.Job(job.Id);
        Assert.Equal(JobState.Parked, parked.State);
        Assert.Equal("InvalidOperationException: ERP said 503", parked.LastError);
        Assert.Equal([1, 2, 3], attempts.Select(a => a.Attempt));
        Assert.Single(attempts.Select(a => a.Key).Distinct());
        Assert.All(await t.Runs(job.Id), r => Assert.Equal(JobRunOutcome.Failed, r.Outcome));
        Assert.Equal(3, t.Observer.Calls.Count(c => c is ("erpsync", "job:erp.push", InvalidOperationException)));

        t.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, await t.RunDue());
        Assert.Single((await t.Admin.ListAsync(new JobQuery { State = JobState.Parked })));

        fail = false;
        await t.Admin.RetryAsync(job.Id);
        await t.RunDue();
        Assert.Equal(JobState.Completed, (await t.Job(job.Id)).State);
        Assert.Equal(1, attempts[^1].Attempt);
        Assert.Equal(attempts[0].Key, attempts[^1].Key);
        Assert.Contains(t.Observer.Calls, c => c is ("erpsync", "job:erp.push", null));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_hanging_handler_is_cancelled_at_its_timeout_and_counts_as_a_failure(bool honoursCancellation)
    {
        using var t = new TestScheduler();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource();
        CancellationToken seenToken = default;
        t.Handle("hang", async (ctx, ct) =>
        {
            seenToken = ct;
            entered.TrySetResult();
            if (honoursCancellation)
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            else
            {
                await never.Task;
            }
        }, owner: "edi", o => o.Timeout = TimeSpan.FromSeconds(30));
        var job = await t.Scheduler.ForOwner("edi").ScheduleAsync(new JobRequest { Kind = "hang", Schedule = JobSchedule.Once(TestScheduler.Start) });

        var pump = t.RunDue();
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        t.Time.Advance(TimeSpan.FromSeconds(30));
        await pump.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(seenToken.IsCancellationRequested);
        var info = await t.Job(job.Id);
        Assert.Equal(JobRunOutcome.TimedOut, info.LastOutcome);
        Assert.Equal(JobState.Scheduled, info.State);   // retried later
        Assert.Equal(1, info.Attempt);
        Assert.Contains("did not finish within 00:00:30", info.LastError, StringComparison.Ordinal);
        Assert.Contains(t.Observer.Calls, c => c is ("edi", "job:hang", TimeoutException));
        never.TrySetResult();
    }

    [Fact]
    public async Task Bad_schedules_are_refused_naming_the_field()
    {
        using var t = new TestScheduler();
        var cron = await Assert.ThrowsAsync<InvalidScheduleException>(() =>
            t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.CronExpression("0 25 * * *") }));
        Assert.Equal("Schedule.Cron", cron.Field);
        Assert.Contains("'0 25 * * *'", cron.Message, StringComparison.Ordinal);
        var zone = await Assert.ThrowsAsync<InvalidScheduleException>(() =>
            t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.CronExpression("0 8 * * *", "Mars/Olympus") }));
        Assert.Equal("Schedule.TimeZone", zone.Field);
        var interval = await Assert.ThrowsAsync<InvalidScheduleException>(() =>
            t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Every(TimeSpan.FromMilliseconds(10)) }));
        Assert.Equal("Schedule.Interval", interval.Field);
        Assert.Empty(await t.Admin.ListAsync(new JobQuery()));
    }

    [Fact]
    public async Task An_owner_sees_and_changes_only_its_own_jobs()
    {
        using var t = new TestScheduler();
        var sales = t.Scheduler.ForOwner("sales");
        var marketing = t.Scheduler.ForOwner("marketing");
        var job = await sales.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Delay(TimeSpan.FromHours(1)) });
        Assert.Null(await marketing.GetAsync(job.Id));
        Assert.False(await marketing.CancelAsync(job.Id));
        Assert.False(await marketing.PauseAsync(job.Id));
        Assert.False(await marketing.RescheduleAsync(job.Id, JobSchedule.Delay(TimeSpan.FromMinutes(1))));
        Assert.Equal(JobState.Scheduled, (await sales.GetAsync(job.Id))!.State);
        Assert.Equal("sales", job.Owner);
    }

    [Fact]
    public async Task A_job_whose_kind_has_no_handler_waits_and_runs_as_soon_as_the_handler_is_registered()
    {
        using var t = new TestScheduler();
        var job = await t.Scheduler.ForOwner("marketing").ScheduleAsync(new JobRequest { Kind = "campaign.send", Schedule = JobSchedule.Once(TestScheduler.Start) });
        await t.RunDue();
        var waiting = await t.Job(job.Id);
        Assert.Equal(JobState.Scheduled, waiting.State);
        Assert.Equal(JobRunOutcome.NoHandler, waiting.LastOutcome);
        Assert.Contains("marketing", waiting.LastError, StringComparison.Ordinal);
        Assert.Equal(0, waiting.Attempt);

        var seen = t.Record("campaign.send", owner: "marketing");   // the plugin starts: waiting jobs are due at once
        for (var i = 0; i < 100 && seen.IsEmpty; i++)
        {
            await t.RunDue();
            await Task.Delay(20);
        }

        Assert.Single(seen);
        Assert.Equal(JobState.Completed, (await t.Job(job.Id)).State);
    }

    [Fact]
    public void A_kind_can_be_registered_by_one_owner_only()
    {
        using var t = new TestScheduler();
        using var first = t.Handle("shared", (_, _) => Task.CompletedTask, owner: "sales");
        var ex = Assert.Throws<InvalidOperationException>(() => t.Handle("shared", (_, _) => Task.CompletedTask, owner: "service"));
        Assert.Contains("'sales'", ex.Message, StringComparison.Ordinal);
        first.Dispose();
        using var second = t.Handle("shared", (_, _) => Task.CompletedTask, owner: "service");
    }

    [Fact]
    public async Task Health_and_queries_show_due_running_parked_and_the_oldest_lateness()
    {
        using var t = new TestScheduler();
        t.Handle("boom", (_, _) => throw new InvalidOperationException("x"), configure: o => o.MaxAttempts = 1);
        var parked = await t.Core.ScheduleAsync(new JobRequest { Kind = "boom", Schedule = JobSchedule.Once(TestScheduler.Start) });
        await t.RunDue();
        await t.Core.ScheduleAsync(new JobRequest { Kind = "later", Schedule = JobSchedule.Delay(TimeSpan.FromMinutes(1)) });
        await t.Core.ScheduleAsync(new JobRequest { Kind = "later", Schedule = JobSchedule.Delay(TimeSpan.FromMinutes(3)) });
        await t.Core.ScheduleAsync(new JobRequest { Kind = "later", Schedule = JobSchedule.Delay(TimeSpan.FromHours(3)) });
        t.Time.Advance(TimeSpan.FromMinutes(5));

        var health = await t.Admin.HealthAsync();
        Assert.Equal(2, health.Due);
        Assert.Equal(1, health.Parked);
        Assert.Equal(0, health.Running);
        Assert.Equal(TimeSpan.FromMinutes(4), health.OldestOverdue);
        Assert.Equal(2, (await t.Admin.ListAsync(new JobQuery { DueOnly = true })).Count);
        Assert.Equal(3, (await t.Admin.ListAsync(new JobQuery { Kind = "later" })).Count);
        var (job, runs) = await t.Admin.ShowAsync(parked.Id);
        Assert.Equal(JobState.Parked, job.State);
        Assert.Equal("InvalidOperationException: x", Assert.Single(runs).Error);

        await Assert.ThrowsAsync<KeyNotFoundException>(() => t.Admin.ShowAsync("nope"));
        var wrong = await Assert.ThrowsAsync<InvalidOperationException>(() => t.Admin.ResumeAsync(parked.Id));
        Assert.Contains("not Paused", wrong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_now_runs_a_recurring_job_early_without_losing_its_regular_occurrence()
    {
        using var t = new TestScheduler();
        var seen = t.Record("report");
        var job = await t.Core.ScheduleAsync(new JobRequest { Kind = "report", Schedule = JobSchedule.CronExpression("0 12 * * *") });
        await t.Admin.RunNowAsync(job.Id);
        await t.RunDue();
        Assert.Single(seen);
        Assert.Equal(TestScheduler.Start.AddHours(4), (await t.Job(job.Id)).DueAt);
    }

    [Fact]
    public async Task Due_jobs_are_found_through_the_index_on_the_due_time_not_by_a_scan()
    {
        using var t = new TestScheduler();
        for (var i = 0; i < 20; i++)
        {
            await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Delay(TimeSpan.FromMinutes(i)) });
        }

        var jobs = CoreDatabaseSeam.Database(t.Database).GetCollection(JobScheduler.JobsCollection);
        var plan = jobs.Query().Where(LiteDB.Query.Between("due", 0L, t.Time.GetUtcNow().ToUnixTimeMilliseconds())).GetPlan();
        Assert.Equal("ix_due", plan["index"]["name"].AsString);
        Assert.Contains("INDEX", plan["index"]["mode"].AsString.ToUpperInvariant(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cron_time_inside_the_skipped_hour_fires_once_after_it_and_a_repeated_hour_fires_once()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 3, 28, 12, 0, 0, TimeSpan.Zero));
        using var t = new TestScheduler(time: time);
        var seen = t.Record("night");
        var job = await t.Core.ScheduleAsync(new JobRequest { Kind = "night", Schedule = JobSchedule.CronExpression("30 2 * * *", "Europe/Berlin") });
        // 29 March 2026: 02:30 does not exist in Berlin; the run comes at the end of the gap (03:00 CEST = 01:00Z).
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.Zero), (await t.Job(job.Id)).DueAt);

        await t.Core.RescheduleAsync(job.Id, JobSchedule.CronExpression("30 2 * * *", "Europe/Berlin"));
        time.SetUtcNow(new DateTimeOffset(2026, 10, 24, 12, 0, 0, TimeSpan.Zero));
        await t.Core.RescheduleAsync(job.Id, JobSchedule.CronExpression("30 2 * * *", "Europe/Berlin"));
        // 25 October 2026: 02:30 happens twice; the job runs at the first one (00:30Z) only.
        var fired = new List<DateTimeOffset>();
        for (var i = 0; i < 2; i++)
        {
            time.SetUtcNow((await t.Job(job.Id)).DueAt!.Value);
            await t.RunDue();
            fired.Add(seen.Last().Occurrence.ToUniversalTime());
        }

        Assert.Equal([new DateTimeOffset(2026, 10, 25, 0, 30, 0, TimeSpan.Zero), new DateTimeOffset(2026, 10, 26, 1, 30, 0, TimeSpan.Zero)], fired);
    }

    [Fact]
    public async Task An_sla_timer_follows_a_pausable_business_clock_through_its_unique_key()
    {
        using var t = new TestScheduler();   // Monday 23 Nov 2026 08:00 UTC
        var calendar = Calendars.BusinessCalendarTests.Load().Default;   // Mon-Fri 09:00-17:00 UTC
        var breaches = t.Record("service.sla-breach", owner: "service");
        var service = t.Scheduler.ForOwner("service");
        var sla = TimeSpan.FromHours(8);

        var clock = BusinessClock.StartAt(t.Time.GetUtcNow());
        await service.ScheduleAsync(new JobRequest { Kind = "service.sla-breach", Schedule = JobSchedule.Once(clock.DueAt(calendar, sla)!.Value), UniqueKey = "sla:case-1" });
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 17, 0, 0, TimeSpan.Zero), (await service.FindByKeyAsync("sla:case-1"))!.DueAt);

        t.Time.Advance(TimeSpan.FromHours(3));                       // 11:00: waiting on the customer
        clock = clock.Pause(calendar, t.Time.GetUtcNow());
        await service.CancelAsync((await service.FindByKeyAsync("sla:case-1"))!.Id);

        t.Time.Advance(TimeSpan.FromHours(24));                      // Tuesday 11:00: the customer answered
        clock = clock.Resume(t.Time.GetUtcNow());
        await service.ScheduleAsync(new JobRequest { Kind = "service.sla-breach", Schedule = JobSchedule.Once(clock.DueAt(calendar, sla)!.Value), UniqueKey = "sla:case-1" });
        // 2 h used on Monday; 6 h left from Tuesday 11:00 -> Tuesday 17:00.
        Assert.Equal(new DateTimeOffset(2026, 11, 24, 17, 0, 0, TimeSpan.Zero), (await service.FindByKeyAsync("sla:case-1"))!.DueAt);

        t.Time.SetUtcNow(new DateTimeOffset(2026, 11, 24, 17, 0, 0, TimeSpan.Zero));
        await t.RunDue();
        Assert.Single(breaches);
    }
}

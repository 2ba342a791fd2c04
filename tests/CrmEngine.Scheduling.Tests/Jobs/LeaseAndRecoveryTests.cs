using System.Collections.Concurrent;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Time.Testing;

namespace CrmEngine.Scheduling.Tests.Jobs;

public class LeaseAndRecoveryTests
{
    [Fact]
    public async Task A_run_lost_by_a_crashed_node_is_taken_over_when_its_lease_expires_and_the_late_result_is_ignored()
    {
        // Node A's clock stands still (its handler hangs as if the process froze); node B's clock moves on.
        using var b = new TestScheduler(node: "node-b");
        using var a = new TestScheduler(node: "node-a", time: new FakeTimeProvider(TestScheduler.Start), database: b.Database, registry: new JobHandlerRegistry());
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Handle("k", async (_, _) =>
        {
            entered.TrySetResult();
            await release.Task;
        }, configure: o => o.Timeout = TimeSpan.FromMinutes(1));
        var seenByB = b.Record("k", configure: o => o.Timeout = TimeSpan.FromMinutes(1));
        var job = await b.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Once(TestScheduler.Start) });

        var pumpA = a.RunDue();
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var running = await b.Job(job.Id);
        Assert.Equal(JobState.Running, running.State);
        Assert.Equal("node-a", running.LeaseOwner);
        Assert.Equal(TestScheduler.Start + TimeSpan.FromMinutes(1) + b.Options.LeaseGrace, running.DueAt);   // lease expiry

        Assert.Equal(0, await b.RunDue());                      // lease still held
        b.Time.Advance(TimeSpan.FromMinutes(1) + b.Options.LeaseGrace);
        Assert.Equal(1, await b.RunDue());                      // taken over
        var ctx = Assert.Single(seenByB);
        Assert.Equal(2, ctx.Attempt);
        Assert.Equal($"{job.Id}:{TestScheduler.Start.ToUnixTimeMilliseconds()}", ctx.IdempotencyKey);

        release.SetResult();                                   // node A wakes up and finishes late
        await pumpA.WaitAsync(TimeSpan.FromSeconds(10));
        var done = await b.Job(job.Id);
        Assert.Equal(JobState.Completed, done.State);
        Assert.Equal(1, done.RunCount);                         // only B's run was applied
        var runs = await b.Runs(job.Id);
        Assert.Equal(2, runs.Count);
        var lost = runs.Single(r => r.Node == "node-a");
        Assert.Equal(JobRunOutcome.Succeeded, lost.Outcome);
        Assert.Contains("lease had been lost", lost.Error, StringComparison.Ordinal);
        Assert.Equal(JobRunOutcome.Succeeded, runs.Single(r => r.Node == "node-b").Outcome);
    }

    [Fact]
    public async Task Several_nodes_sharing_one_database_run_each_due_job_once()
    {
        using var a = new TestScheduler(node: "node-a");
        using var b = new TestScheduler(node: "node-b", time: a.Time, database: a.Database, registry: a.Registry);
        var runs = new ConcurrentDictionary<string, int>();
        a.Handle("k", async (ctx, _) =>
        {
            runs.AddOrUpdate(ctx.JobId, 1, (_, n) => n + 1);
            await Task.Yield();
        });
        for (var i = 0; i < 40; i++)
        {
            await a.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Once(TestScheduler.Start) });
        }

        while (true)
        {
            var counts = await Task.WhenAll(a.RunDue(), b.RunDue(), a.RunDue(), b.RunDue());
            if (counts.Sum() == 0)
            {
                break;
            }
        }

        Assert.Equal(40, runs.Count);
        Assert.All(runs.Values, n => Assert.Equal(1, n));
        var nodes = (await a.Admin.ListAsync(new JobQuery { Limit = 100 })).Select(j => j.Id)
            .SelectMany(id => a.Runs(id).Result).Select(r => r.Node).Distinct().ToList();
        Assert.Equal(2, nodes.Count);   // both nodes took part
    }

    [Fact]
    public async Task After_a_kill_mid_run_the_restarted_node_runs_the_interrupted_occurrence_again_and_no_other_twice()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-scheduling-tests", Guid.NewGuid().ToString("N"));
        var time = new FakeTimeProvider(TestScheduler.Start);
        string jobId;
        var hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var occurrences = new List<(DateTimeOffset Occurrence, int Attempt)>();
        TestScheduler? first = null;
        try
        {
            first = new TestScheduler(folder, time);
            first.Handle("sync", async (ctx, _) =>
            {
                occurrences.Add((ctx.Occurrence, ctx.Attempt));
                if (occurrences.Count == 2)
                {
                    entered.TrySetResult();
                    await hang.Task;   // the process dies during the second occurrence
                }
            });
            jobId = (await first.Core.ScheduleAsync(new JobRequest { Kind = "sync", Schedule = JobSchedule.Every(TimeSpan.FromMinutes(10)) })).Id;
            time.Advance(TimeSpan.FromMinutes(10));
            await first.RunDue();
            time.Advance(TimeSpan.FromMinutes(10));
            _ = first.RunDue();
            await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
            first.Database.Dispose();   // "kill": the store closes under the run, which never reports back

            using var second = new TestScheduler(folder, time);
            var seen = second.Record("sync");
            Assert.Equal(JobState.Running, (await second.Job(jobId)).State);
            await second.Scheduler.RecoverAsync();
            var recovered = await second.Job(jobId);
            Assert.Equal(JobState.Scheduled, recovered.State);
            Assert.Equal(JobRunOutcome.Abandoned, recovered.LastOutcome);

            await second.RunDue();
            var again = Assert.Single(seen);
            Assert.Equal(TestScheduler.Start.AddMinutes(20), again.Occurrence);   // the interrupted occurrence
            Assert.Equal(2, again.Attempt);
            time.Advance(TimeSpan.FromMinutes(10));
            await second.RunDue();
            Assert.Equal([TestScheduler.Start.AddMinutes(20), TestScheduler.Start.AddMinutes(30)], seen.Select(s => s.Occurrence));

            var runs = await second.Runs(jobId);
            Assert.Equal(4, runs.Count);
            Assert.Equal(JobRunOutcome.Abandoned, runs.Single(r => r.Outcome == JobRunOutcome.Abandoned && r.Attempt == 1 && r.Occurrence == TestScheduler.Start.AddMinutes(20)).Outcome);
            // Every occurrence succeeded exactly once.
            Assert.Equal(3, runs.Where(r => r.Outcome == JobRunOutcome.Succeeded).Select(r => r.Occurrence).Distinct().Count());
            Assert.Equal(3, runs.Count(r => r.Outcome == JobRunOutcome.Succeeded));
        }
        finally
        {
            hang.TrySetResult();
            first?.Scheduler.Dispose();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Jobs_survive_a_restart_of_the_engine()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-scheduling-tests", Guid.NewGuid().ToString("N"));
        var time = new FakeTimeProvider(TestScheduler.Start);
        try
        {
            string id;
            using (var before = new TestScheduler(folder, time))
            {
                id = (await before.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Delay(TimeSpan.FromHours(1)), UniqueKey = "u", Payload = "p" })).Id;
            }

            using var after = new TestScheduler(folder, time);
            var seen = after.Record("k");
            var job = await after.Job(id);
            Assert.Equal(("u", "p", JobState.Scheduled), (job.UniqueKey, job.Payload, job.State));
            time.Advance(TimeSpan.FromHours(1));
            await after.RunDue();
            Assert.Equal("p", Assert.Single(seen).Payload);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Pause_or_cancel_asked_during_a_run_apply_when_the_run_ends()
    {
        using var t = new TestScheduler();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new SemaphoreSlim(0);
        t.Handle("k", async (_, _) =>
        {
            entered.Release();
            await gate.Task;
        });
        var paused = await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Every(TimeSpan.FromMinutes(5), TestScheduler.Start) });
        var cancelled = await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Every(TimeSpan.FromMinutes(5), TestScheduler.Start) });
        var pump = t.RunDue();
        await entered.WaitAsync(TimeSpan.FromSeconds(10));
        await entered.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(await t.Core.PauseAsync(paused.Id));
        Assert.True(await t.Core.CancelAsync(cancelled.Id));
        Assert.Equal(JobState.Running, (await t.Job(paused.Id)).State);
        gate.SetResult();
        await pump;
        Assert.Equal(JobState.Paused, (await t.Job(paused.Id)).State);
        Assert.Equal(JobState.Cancelled, (await t.Job(cancelled.Id)).State);
        Assert.Equal(JobRunOutcome.Succeeded, (await t.Job(cancelled.Id)).LastOutcome);
    }

    [Fact]
    public async Task Stopping_the_engine_during_a_run_puts_the_occurrence_back_without_counting_an_attempt()
    {
        using var t = new TestScheduler();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.Handle("k", async (_, ct) =>
        {
            entered.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        });
        var job = await t.Core.ScheduleAsync(new JobRequest { Kind = "k", Schedule = JobSchedule.Once(TestScheduler.Start) });
        var pump = t.RunDue();
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await t.Scheduler.StopRunsAsync(TimeSpan.FromSeconds(10));
        await pump.WaitAsync(TimeSpan.FromSeconds(10));
        var info = await t.Job(job.Id);
        Assert.Equal(JobState.Scheduled, info.State);
        Assert.Equal(0, info.Attempt);
        Assert.Equal(JobRunOutcome.Abandoned, Assert.Single(await t.Runs(job.Id)).Outcome);
        Assert.Empty(t.Observer.Calls);   // a shutdown is not the plugin's fault
    }
}

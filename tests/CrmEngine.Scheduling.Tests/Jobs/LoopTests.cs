using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Scheduling.Jobs;

namespace CrmEngine.Scheduling.Tests.Jobs;

/// <summary>The sleep the scheduler loop takes between looks for due jobs.</summary>
public sealed class LoopTests
{
    [Fact]
    public async Task With_every_run_slot_busy_the_loop_sleeps_until_a_run_ends_instead_of_spinning_on_overdue_jobs()
    {
        using var t = new TestScheduler(options: new SchedulerOptions { MaxConcurrentRuns = 1, PollInterval = TimeSpan.FromSeconds(1) });
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.Handle("slow", async (_, ct) => await release.Task.WaitAsync(ct));
        await t.Core.ScheduleAsync(new JobRequest { Kind = "slow", Schedule = JobSchedule.Once(TestScheduler.Start) });
        await t.Core.ScheduleAsync(new JobRequest { Kind = "slow", Schedule = JobSchedule.Once(TestScheduler.Start) });

        // Nothing running: the overdue jobs are due at once.
        Assert.Equal(TimeSpan.Zero, t.Scheduler.NextDelay());

        var wake = t.Scheduler.WakeSignal;
        Assert.Equal(1, await t.Scheduler.PumpAsync());
        // The one slot is taken and a job is still overdue: the loop sleeps (the end of the run wakes it).
        Assert.Equal(TimeSpan.FromSeconds(1), t.Scheduler.NextDelay());
        Assert.False(wake.IsCompleted);

        release.SetResult();
        await wake.WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually(() => t.Scheduler.NextDelay() == TimeSpan.Zero);
        Assert.Equal(1, await t.Scheduler.PumpAsync(waitForRuns: true));
    }

    private static async Task Eventually(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not met in time");
            await Task.Delay(10);
        }
    }
}

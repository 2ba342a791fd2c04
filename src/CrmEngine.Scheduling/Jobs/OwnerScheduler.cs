using CrmEngine.Abstractions.Scheduling;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>The <see cref="IScheduler"/> handed to one owner (a plugin or the core): it sees and changes only its own jobs.</summary>
internal sealed class OwnerScheduler(JobScheduler scheduler, string owner) : IScheduler
{
    public string Owner { get; } = owner;

    public Task<JobInfo> ScheduleAsync(JobRequest request, CancellationToken cancellationToken = default) =>
        scheduler.ScheduleAsync(Owner, request, cancellationToken);

    public async Task<JobInfo?> GetAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var job = await scheduler.GetAsync(jobId, cancellationToken).ConfigureAwait(false);
        return job is not null && job.Owner == Owner ? job : null;
    }

    public Task<JobInfo?> FindByKeyAsync(string uniqueKey, CancellationToken cancellationToken = default) =>
        scheduler.FindByKeyAsync(Owner, uniqueKey, cancellationToken);

    public Task<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default) =>
        Done(scheduler.ChangeAsync(jobId, Owner, JobScheduler.Change.Cancel, cancellationToken));

    public Task<bool> RescheduleAsync(string jobId, JobSchedule schedule, CancellationToken cancellationToken = default) =>
        scheduler.RescheduleAsync(jobId, Owner, schedule, cancellationToken);

    public Task<bool> PauseAsync(string jobId, CancellationToken cancellationToken = default) =>
        Done(scheduler.ChangeAsync(jobId, Owner, JobScheduler.Change.Pause, cancellationToken));

    public Task<bool> ResumeAsync(string jobId, CancellationToken cancellationToken = default) =>
        Done(scheduler.ChangeAsync(jobId, Owner, JobScheduler.Change.Resume, cancellationToken));

    private static async Task<bool> Done(Task<string?> change) => await change.ConfigureAwait(false) is "";
}

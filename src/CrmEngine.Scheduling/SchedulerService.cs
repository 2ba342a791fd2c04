using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Scheduling;

/// <summary>
/// The scheduler loop inside the service: at start it takes back this node's interrupted runs and
/// registers the job kinds declared in the host's services (owner <c>core</c>); then it claims due
/// jobs, sleeping until the next due time (at most the poll interval) or until woken. At stop, runs
/// in progress are cancelled and go back to Scheduled.
/// </summary>
public sealed class SchedulerService(JobScheduler scheduler, IServiceProvider services, ILogger<SchedulerService> logger) : BackgroundService
{
    private static readonly TimeSpan PurgeEvery = TimeSpan.FromHours(1);
    private IDisposable? _coreKinds;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Calendars are built now, so that a bad calendar setting stops start-up with its key named.
        _ = services.GetService(typeof(CrmEngine.Abstractions.Scheduling.IBusinessCalendars));
        _coreKinds = scheduler.Registry.RegisterDeclared(JobScheduler.CoreOwner, services);
        await scheduler.RecoverAsync(cancellationToken).ConfigureAwait(false);
        logger.LogInformation("Scheduler started on node {Node}", scheduler.NodeId);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var lastPurge = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            var wake = scheduler.WakeSignal;
            try
            {
                await scheduler.PumpAsync(cancellationToken: stoppingToken).ConfigureAwait(false);
                if (DateTimeOffset.UtcNow - lastPurge > PurgeEvery)
                {
                    lastPurge = DateTimeOffset.UtcNow;
                    await scheduler.PurgeEndedAsync(stoppingToken).ConfigureAwait(false);
                }

                await scheduler.WaitAsync(wake, scheduler.NextDelay(), stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Scheduler loop failed; retrying in one second");
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await scheduler.StopRunsAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _coreKinds?.Dispose();
    }
}

using System.ComponentModel.DataAnnotations;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Samples.WelcomePlugin;

/// <summary>Options from <c>Plugins:sample.welcome</c>.</summary>
public sealed class WelcomeOptions
{
    /// <summary>The welcome task is due this many days after the customer was created.</summary>
    [Range(0, 365)]
    public int DueInDays { get; set; } = 3;

    [Required(AllowEmptyStrings = false)]
    [StringLength(200)]
    public string Subject { get; set; } = "Welcome";
}

/// <summary>On every new customer, adds a "Welcome" task to the customer's timeline.</summary>
public sealed class WelcomePlugin : CrmPlugin
{
    public override void ConfigureServices(IPluginBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.BindOptions<WelcomeOptions>();
        // Async: runs after the customer is committed, retried by the engine if it fails.
        builder.AddWriteHandler<Customer, NewCustomerHandler>(PipelineStage.Async);
    }

    public override Task StartAsync(IPluginContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Logger.LogInformation("Welcome plugin {Version} started", context.Version);
        return Task.CompletedTask;
    }
}

/// <summary>The write handler; the engine resolves it from the plugin's services for every event.</summary>
public sealed class NewCustomerHandler(ICrmStore store, IOptions<WelcomeOptions> options, TimeProvider time)
    : IWriteHandler<Customer>
{
    public const string Source = "sample.welcome";

    public async Task HandleAsync(WriteEvent<Customer> writeEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writeEvent);
        if (writeEvent.Operation != ChangeOperation.Create || writeEvent.After is null)
        {
            return;
        }

        // Async handlers run at least once: do nothing when the welcome task is already there.
        var existing = await store.Activities.FindAsync(IndexedField.CustomerId, writeEvent.EntityId, 1000,
            cancellationToken: cancellationToken);
        if (existing.Any(a => a.Source == Source))
        {
            return;
        }

        var o = options.Value;
        await store.Activities.CreateAsync(new Activity
        {
            CustomerId = writeEvent.EntityId,
            Type = ActivityType.Task,
            Status = ActivityStatus.Planned,
            Subject = o.Subject,
            Body = $"Welcome {writeEvent.After.Name}: call or write to them.",
            Owner = writeEvent.After.Owner,
            DueAt = time.GetUtcNow().AddDays(o.DueInDays),
            Source = Source,
        }, cancellationToken);
    }
}

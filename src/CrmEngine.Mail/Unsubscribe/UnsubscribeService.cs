using CrmEngine.Abstractions.Model;
using CrmEngine.Api;
using CrmEngine.Core.Storage;
using CrmEngine.Mail.Outbox;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmEngine.Mail.Unsubscribe;

internal enum UnsubscribeOutcome { Withdrawn, AlreadyWithdrawn, CustomerGone }

/// <summary>
/// Carries out a verified one-click unsubscribe: appends a consent entry withdrawing the purpose on e-mail (source
/// "unsubscribe link") through the pipeline, as actor <c>unsubscribe</c>, so rules, audit and the change feed see it.
/// Nothing is written when the purpose is already withdrawn, so repeated clicks add nothing.
/// </summary>
internal sealed class UnsubscribeService(UnsubscribeTokens tokens, IStoreProvider stores, TimeProvider time,
    Func<ICustomerRedirects?>? redirects = null, ILogger? logger = null)
{
    public const string Source = "unsubscribe link";
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    public Task<UnsubscribeClaim?> VerifyAsync(string? token) => tokens.VerifyAsync(token);

    public async Task<UnsubscribeOutcome> WithdrawAsync(UnsubscribeClaim claim, CancellationToken cancellationToken)
    {
        var store = stores.ForActor("unsubscribe");
        var customer = await store.Customers.GetAsync(claim.CustomerId, cancellationToken).ConfigureAwait(false);
        if (customer is null && redirects?.Invoke() is { } r && await r.ResolveAsync(claim.CustomerId, cancellationToken).ConfigureAwait(false) is { } kept)
        {
            customer = await store.Customers.GetAsync(kept, cancellationToken).ConfigureAwait(false);
        }

        if (customer is null)
        {
            return UnsubscribeOutcome.CustomerGone;
        }

        if (await MailOutbox.ConsentProblemAsync(store, customer, claim.Purpose, cancellationToken).ConfigureAwait(false) is not null)
        {
            return UnsubscribeOutcome.AlreadyWithdrawn;
        }

        await store.Consents.CreateAsync(new ConsentEntry
        {
            CustomerId = customer.Id,
            Purpose = claim.Purpose,
            Channel = ConsentChannel.Email,
            Granted = false,
            Source = Source,
            At = time.GetUtcNow(),
        }, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Customer {Customer} unsubscribed from {Purpose} by the link in message {Message}", customer.Id, claim.Purpose, claim.MessageId);
        return UnsubscribeOutcome.Withdrawn;
    }
}

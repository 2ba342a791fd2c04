using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Templates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MimeKit;

namespace CrmEngine.Mail.Outbox;

/// <summary>Wakes the sender when a message was enqueued or made due.</summary>
internal sealed class MailSignal
{
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Current => Volatile.Read(ref _wake).Task;

    public void Wake() => Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}

/// <summary>
/// The outbox as plugins, rules and the engine use it. Enqueueing checks the request, loads the customer, contact and
/// order into a snapshot, decides (consent, address, blacklist) whether the message may go or is Suppressed with the
/// reason, and stores it once per idempotency key. Sending is the <see cref="Sending.OutboxSender"/>'s job.
/// <para>Rule for marketing mail: the customer's consent ledger must allow the purpose on e-mail (the latest entry for
/// the purpose on channel Email or Any decides; no entry means no consent). Transactional mail needs no consent. Both
/// are suppressed for a blacklisted customer, a customer that no longer exists, or no valid address.</para>
/// </summary>
internal sealed class MailOutbox : IMailOutbox
{
    private readonly OutboxStore _store;
    private readonly IStoreProvider _stores;
    private readonly Func<IMailTemplates?> _templates;
    private readonly MailOptions _options;
    private readonly MailSignal _signal;
    private readonly Func<ICustomerRedirects?> _redirects;
    private readonly ILogger _logger;

    public MailOutbox(OutboxStore store, IStoreProvider stores, Func<IMailTemplates?> templates, MailOptions options, MailSignal signal,
        Func<ICustomerRedirects?>? redirects = null, ILogger? logger = null, string origin = "core")
    {
        _store = store;
        _stores = stores;
        _templates = templates;
        _options = options;
        _signal = signal;
        _redirects = redirects ?? (() => null);
        _logger = logger ?? NullLogger.Instance;
        Origin = origin;
        _domain = Domain(options.FromAddress);
    }

    private readonly string _domain;

    /// <summary>Recorded on every message enqueued through this instance (unless a handler's name is known).</summary>
    public string Origin { get; }

    /// <summary>The same outbox, recording <paramref name="origin"/> (for example <c>plugin:crm.sales</c>).</summary>
    public MailOutbox ForOrigin(string origin) => new(_store, _stores, _templates, _options, _signal, _redirects, _logger, origin);

    public async Task<MailEnqueueResult> EnqueueAsync(MailRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return (await EnqueueAllAsync([request], single: true, cancellationToken).ConfigureAwait(false))[0];
    }

    /// <summary>
    /// Many messages (a campaign run): every request is checked and decided first (a bad one refuses the whole call,
    /// naming its position, and nothing is stored), then they are stored in transactions of up to
    /// <see cref="InsertBatch"/> messages, one disk sync each, instead of one per message.
    /// </summary>
    public Task<IReadOnlyList<MailEnqueueResult>> EnqueueManyAsync(IReadOnlyList<MailRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        return EnqueueAllAsync(requests, single: false, cancellationToken);
    }

    /// <summary>Messages stored per transaction by <see cref="EnqueueManyAsync"/>.</summary>
    internal const int InsertBatch = 500;

    private async Task<IReadOnlyList<MailEnqueueResult>> EnqueueAllAsync(IReadOnlyList<MailRequest> requests, bool single, CancellationToken cancellationToken)
    {
        if (WriteScope.Current is { InTransaction: true } scope)
        {
            // The writer thread is waiting for this handler: a direct write would never run. Such handlers may also
            // run more than once per write, so they must not send mail at all.
            throw new InvalidOperationException($"Handler '{scope.HandlerName}' enqueued mail from a synchronous pipeline stage; " +
                                                "enqueue mail from an asynchronous handler (or outside handlers).");
        }

        var results = new MailEnqueueResult?[requests.Count];
        var fresh = new List<(int Index, MailDocument Doc)>(requests.Count);
        var store = _stores.ForActor("mail");
        var origin = WriteScope.Current?.HandlerName ?? Origin;
        for (var i = 0; i < requests.Count; i++)
        {
            var request = requests[i] ?? throw new ArgumentException($"requests[{i}] is null", nameof(requests));
            try
            {
                Check(request);
                cancellationToken.ThrowIfCancellationRequested();
                if (_store.FindByKey(request.IdempotencyKey) is { } seen)
                {
                    results[i] = Result(seen, duplicate: true);
                    continue;
                }

                fresh.Add((i, Build(request, await DecideAsync(store, request, cancellationToken).ConfigureAwait(false), origin)));
            }
            catch (ArgumentException ex) when (!single)
            {
                throw new ArgumentException($"requests[{i}] (key '{request.IdempotencyKey}'): {ex.Message}", nameof(requests), ex);
            }
        }

        var woke = false;
        foreach (var chunk in fresh.Chunk(InsertBatch))
        {
            var stored = await _store.InsertManyAsync(chunk.Select(c => c.Doc).ToList()).ConfigureAwait(false);
            for (var j = 0; j < chunk.Length; j++)
            {
                var (doc, duplicate) = stored[j];
                results[chunk[j].Index] = Result(doc, duplicate);
                if (duplicate)
                {
                    continue;
                }

                if (doc.State == MailState.Pending)
                {
                    woke = true;
                }
                else
                {
                    _logger.LogInformation("Mail {Id} ({Template}, key {Key}) suppressed: {Reason}", doc.Id, doc.Template, doc.Key, doc.LastError);
                }
            }

            if (woke)
            {
                // Each stored chunk can be sent while the next one is written.
                _signal.Wake();
            }
        }

        return results!;
    }

    private MailDocument Build(MailRequest request, Decision decision, string origin)
    {
        var now = _store.NowMs;
        var id = Guid.CreateVersion7().ToString("N");
        return new MailDocument
        {
            Id = id,
            Key = request.IdempotencyKey,
            Template = request.Template.Trim(),
            Kind = request.Kind,
            Purpose = string.IsNullOrWhiteSpace(request.Purpose) ? null : request.Purpose.Trim(),
            CustomerId = decision.Customer?.Id ?? request.CustomerId,
            ContactId = decision.Contact?.Id ?? request.ContactId,
            To = decision.To ?? "",
            ToName = decision.ToName,
            Culture = string.IsNullOrWhiteSpace(request.Culture) ? _options.Culture : request.Culture.Trim(),
            Snapshot = ModelSnapshot.Serialize(decision.Customer, decision.Contact, decision.Order, decision.Extra),
            MessageId = $"{id}@{_domain}",
            State = decision.Suppressed is null ? MailState.Pending : MailState.Suppressed,
            Due = decision.Suppressed is null ? Math.Max(now, request.NotBefore?.ToUnixTimeMilliseconds() ?? now) : null,
            LastError = decision.Suppressed,
            Origin = origin,
            Created = now,
            Updated = now,
        };
    }

    private static MailEnqueueResult Result(MailDocument doc, bool duplicate) =>
        new(doc.Id, doc.State, duplicate, doc.State == MailState.Suppressed ? doc.LastError : null);

    private void Check(MailRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.IdempotencyKey))
        {
            throw new ArgumentException("IdempotencyKey: one key per trigger is required (for example order-confirmation:<order id>).", nameof(request));
        }

        if (request.IdempotencyKey.Length > 400)
        {
            throw new ArgumentException($"IdempotencyKey: at most 400 characters (got {request.IdempotencyKey.Length}).", nameof(request));
        }

        if (string.IsNullOrWhiteSpace(request.Template))
        {
            throw new ArgumentException("Template: a template name is required (for example welcome).", nameof(request));
        }

        if (_templates() is { } templates && !templates.Exists(request.Template.Trim()))
        {
            throw new ArgumentException($"Template: there is no template '{request.Template}' in the templates folder.", nameof(request));
        }

        if (!Enum.IsDefined(request.Kind))
        {
            throw new ArgumentException($"Kind: '{request.Kind}' is not Transactional or Marketing.", nameof(request));
        }

        if (request.Kind == MailKind.Marketing)
        {
            if (string.IsNullOrWhiteSpace(request.Purpose))
            {
                throw new ArgumentException("Purpose: marketing mail needs the consent purpose it is sent for (for example newsletter).", nameof(request));
            }

            if (string.IsNullOrWhiteSpace(request.CustomerId))
            {
                throw new ArgumentException("CustomerId: marketing mail needs the customer (consent is kept per customer).", nameof(request));
            }
        }

        if (request.Culture is { Length: > 0 } culture)
        {
            try
            {
                _ = System.Globalization.CultureInfo.GetCultureInfo(culture);
            }
            catch (System.Globalization.CultureNotFoundException)
            {
                throw new ArgumentException($"Culture: '{culture}' is not a known culture.", nameof(request));
            }
        }
    }

    private sealed record Decision(Customer? Customer, ContactPerson? Contact, Order? Order, Dictionary<string, object?> Extra,
        string? To, string? ToName, string? Suppressed);

    private async Task<Decision> DecideAsync(ICrmStore store, MailRequest request, CancellationToken ct)
    {
        var extra = new Dictionary<string, object?>(StringComparer.Ordinal);
        Order? order = null;
        foreach (var (name, value) in request.Model)
        {
            if (string.Equals(name, "order", StringComparison.OrdinalIgnoreCase) && value is Order o)
            {
                order = o;
            }
            else if (string.Equals(name, "order", StringComparison.OrdinalIgnoreCase) && value is string orderId)
            {
                order = await store.Orders.GetAsync(orderId, ct).ConfigureAwait(false)
                        ?? throw new ArgumentException($"Model: order '{orderId}' does not exist.", nameof(request));
            }
            else
            {
                extra[name] = value;
            }
        }

        Customer? customer = null;
        string? missing = null;
        if (!string.IsNullOrWhiteSpace(request.CustomerId))
        {
            var customerId = request.CustomerId.Trim();
            customer = await store.Customers.GetAsync(customerId, ct).ConfigureAwait(false);
            if (customer is null && _redirects() is { } redirects && await redirects.ResolveAsync(customerId, ct).ConfigureAwait(false) is { } kept)
            {
                customer = await store.Customers.GetAsync(kept, ct).ConfigureAwait(false);
            }

            if (customer is null)
            {
                missing = $"customer '{customerId}' does not exist (deleted, merged or erased)";
            }
        }

        ContactPerson? contact = null;
        if (!string.IsNullOrWhiteSpace(request.ContactId) && customer is not null)
        {
            contact = customer.Contacts.FirstOrDefault(c => c.Id == request.ContactId)
                      ?? throw new ArgumentException($"ContactId: customer '{customer.Id}' has no contact '{request.ContactId}'.", nameof(request));
        }

        var to = request.To?.Trim();
        var toName = request.ToName;
        if (string.IsNullOrEmpty(to))
        {
            (to, toName) = contact is { Email: { Length: > 0 } contactMail }
                ? (contactMail, toName ?? contact.Name)
                : (customer?.Emails.FirstOrDefault(e => !string.IsNullOrWhiteSpace(e))?.Trim(), toName ?? PrimaryName(customer));
        }
        else
        {
            toName ??= contact?.Name ?? PrimaryName(customer);
        }

        var suppressed = missing
                         ?? (customer is not null && IsErased(customer) ? ErasedReason : null)
                         ?? (customer is { Blacklisted: true } ? BlacklistedReason : null)
                         ?? (string.IsNullOrEmpty(to) ? "no e-mail address (none given, and the customer or contact has none)" : null)
                         ?? (!IsAddress(to!) ? $"'{to}' is not a valid e-mail address" : null);
        if (suppressed is null && request.Kind == MailKind.Marketing)
        {
            suppressed = await ConsentProblemAsync(store, customer!, request.Purpose!.Trim(), ct).ConfigureAwait(false);
        }

        return new Decision(customer, contact, order, extra, to, string.IsNullOrWhiteSpace(toName) ? null : toName, suppressed);
    }

    /// <summary>
    /// Why mail to a blacklisted customer is suppressed. The customer's blacklist reason is a protected field: it is never
    /// copied into the outbox or the log (both are read by people who may not see it).
    /// </summary>
    internal const string BlacklistedReason = "customer is blacklisted";

    /// <summary>A stored reason without a blacklist reason after it (messages suppressed before it was left out carry one).</summary>
    internal static string? WithoutBlacklistReason(string? error) =>
        error is not null && error.StartsWith(BlacklistedReason, StringComparison.Ordinal) ? BlacklistedReason : error;

    /// <summary>Why mail to an erased customer is suppressed (at enqueue, at send time and by an erase).</summary>
    internal const string ErasedReason = "the customer's personal data was erased (GDPR erase): no mail is sent to or about them";

    /// <summary>
    /// True for the card a GDPR erase leaves (CrmEngine.DataExchange's CustomerEraser: name "[erased]", tag "erased").
    /// Checked even when the request names an address of its own: an erased person gets no mail from the engine.
    /// </summary>
    internal static bool IsErased(Customer customer) =>
        customer.Name == OutboxStore.Erased && customer.Tags.Contains("erased", StringComparer.Ordinal);

    private static string? PrimaryName(Customer? customer) =>
        customer is null ? null
        : customer.Kind == CustomerKind.Person ? customer.Name
        : customer.Contacts.FirstOrDefault(c => c.Primary)?.Name ?? customer.Name;

    internal static bool IsAddress(string address) =>
        MailboxAddress.TryParse(address, out var parsed) && parsed.Address == address && address.IndexOf('@', StringComparison.Ordinal) is > 0 and var at
        && at < address.Length - 1;

    /// <summary>Null when the ledger allows <paramref name="purpose"/> on e-mail, else why not. The latest entry decides.</summary>
    internal static async Task<string?> ConsentProblemAsync(ICrmStore store, Customer customer, string purpose, CancellationToken ct)
    {
        ConsentEntry? latest = null;
        string? after = null;
        while (true)
        {
            var page = await store.Consents.FindAsync(IndexedField.CustomerId, customer.Id, 500, after, ct).ConfigureAwait(false);
            foreach (var entry in page)
            {
                if (string.Equals(entry.Purpose.Trim(), purpose, StringComparison.OrdinalIgnoreCase)
                    && entry.Channel is ConsentChannel.Email or ConsentChannel.Any
                    && (latest is null || entry.At > latest.At || (entry.At == latest.At && string.CompareOrdinal(entry.Id, latest.Id) > 0)))
                {
                    latest = entry;
                }
            }

            if (page.Count < 500)
            {
                break;
            }

            after = page[^1].Id;
        }

        return latest switch
        {
            null => $"no consent for '{purpose}' on e-mail",
            { Granted: true } => null,
            _ => $"consent for '{purpose}' on e-mail withdrawn on {latest.At:yyyy-MM-dd} ({latest.Source})",
        };
    }

    internal static string Domain(string address) =>
        MailboxAddress.TryParse(address, out var parsed) && parsed.Domain is { Length: > 0 } domain ? domain : "localhost";
}

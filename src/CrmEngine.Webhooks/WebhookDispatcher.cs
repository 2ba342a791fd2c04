using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using CrmEngine.Security;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrmEngine.Webhooks;

/// <summary>What one POST to a receiver came to.</summary>
internal sealed record SendResult(bool Delivered, int? StatusCode, string? Error, bool Permanent = false);

/// <summary>
/// Follows the change feed from the stored cursor, turns each change into durable deliveries for the matching
/// active subscriptions, and POSTs them, signed. Each subscription gets one delivery at a time, oldest first: a
/// delivery waiting for its retry holds back that subscription's later ones (other subscriptions go on). A parked
/// delivery leaves the line, so one dead event does not stop a subscription for good.
/// </summary>
internal sealed class WebhookDispatcher : BackgroundService
{
    private const int FanOutBatch = 500;
    private static readonly TimeSpan PruneEvery = TimeSpan.FromHours(1);
    private static readonly TimeSpan ErrorPause = TimeSpan.FromSeconds(1);

    private readonly WebhookStore _store;
    private readonly IChangeFeed _feed;
    private readonly RecordImages _images;
    private readonly CrmDatabase _db;
    private readonly WebhookOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly ConcurrentDictionary<string, Task> _inFlight = new(StringComparer.Ordinal);
    private readonly SecurityDirectory? _security;
    private readonly TargetPolicy _targets;

    public WebhookDispatcher(WebhookStore store, IChangeFeed feed, CrmDatabase database, IOptions<WebhookOptions> options,
        TimeProvider? timeProvider = null, ILogger<WebhookDispatcher>? logger = null, SecurityDirectory? security = null)
    {
        _security = security;
        _targets = TargetPolicy.From(options.Value);
        _store = store;
        _feed = feed;
        _db = database;
        _images = new RecordImages(database);
        _options = options.Value;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _http = new HttpClient(new SocketsHttpHandler
        {
            // Redirects are never followed: a receiver could otherwise send signed customer data to another host.
            AllowAutoRedirect = false,
            ConnectTimeout = _options.RequestTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            UseCookies = false,
            // The target itself is checked and connected to; a proxy from the environment would hide it.
            UseProxy = false,
            ConnectCallback = (context, ct) => TargetGuard.ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, _targets, ct),
        })
        {
            // The per-request budget is a CancellationTokenSource, so a timeout is told from a shutdown.
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("CrmEngine-Webhooks", "1.0"));
    }

    /// <summary>The newest change already turned into deliveries (for health).</summary>
    public long Cursor { get; private set; }

    /// <summary>Look for work now (a subscription or delivery was changed through the API).</summary>
    public void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (ObjectDisposedException)
        {
            // stopped
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        Cursor = _store.ReadCursor() ?? await _store.InitCursorAsync().ConfigureAwait(false);
        var lastPrune = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            var wait = _options.PollInterval;
            try
            {
                await FanOutAsync(stoppingToken).ConfigureAwait(false);
                var nextDue = StartDueSends(stoppingToken);
                var untilDue = nextDue - _time.GetUtcNow();
                if (untilDue < wait)
                {
                    wait = untilDue < TimeSpan.Zero ? TimeSpan.Zero : untilDue;
                }

                if (_time.GetUtcNow() - lastPrune > PruneEvery)
                {
                    lastPrune = _time.GetUtcNow();
                    var removed = await _store.PruneDeliveredAsync(lastPrune - _options.DeliveredRetention).ConfigureAwait(false);
                    if (removed > 0)
                    {
                        _logger.LogInformation("Webhooks: removed {Count} delivered deliveries older than {Retention}", removed, _options.DeliveredRetention);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Webhooks: dispatcher pass failed; trying again");
                Cursor = _store.ReadCursor() ?? Cursor;
                wait = ErrorPause;
            }

            try
            {
                await _wake.WaitAsync(wait, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        // Sends cut short by the stop are not counted as tries: they stay open and go again at the next start.
        await Task.WhenAll(_inFlight.Values).ConfigureAwait(false);
    }

    private async Task FanOutAsync(CancellationToken cancellationToken)
    {
        while (_db.LastSequence > Cursor && !cancellationToken.IsCancellationRequested)
        {
            var (cursor, changes, deliveries) = await _store.FanOutAsync(Cursor, _feed, _images, FanOutBatch, cancellationToken,
                user => SubscriberAccess.ForAsync(_security, user, cancellationToken)).ConfigureAwait(false);
            if (changes == 0)
            {
                return; // the newer sequence is not committed yet
            }

            Cursor = cursor;
            if (deliveries > 0)
            {
                _logger.LogDebug("Webhooks: {Deliveries} deliveries for {Changes} changes (up to {Cursor})", deliveries, changes, cursor);
            }
        }
    }

    /// <summary>Starts the head delivery of every idle active subscription that is due; returns when the next one falls due.</summary>
    private DateTimeOffset StartDueSends(CancellationToken stoppingToken)
    {
        var now = _time.GetUtcNow();
        var nextDue = DateTimeOffset.MaxValue;
        foreach (var (id, url, secret) in _store.ActiveTargets())
        {
            if (_inFlight.ContainsKey(id))
            {
                continue;
            }

            var head = _store.NextFor(id, url, secret);
            if (head is null)
            {
                continue;
            }

            var due = DateTimeOffset.FromUnixTimeMilliseconds(head.DueMs);
            if (due > now)
            {
                nextDue = due < nextDue ? due : nextDue;
                continue;
            }

            if (_inFlight.Count >= _options.MaxConcurrentSubscriptions)
            {
                return now; // woken again when a send ends
            }

            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _inFlight[id] = started.Task;
            _ = Task.Run(async () =>
            {
                try
                {
                    await DeliverAsync(head, stoppingToken).ConfigureAwait(false);
                }
                finally
                {
                    _inFlight.TryRemove(id, out _);
                    started.TrySetResult();
                    Wake();
                }
            }, CancellationToken.None);
        }

        return nextDue;
    }

    private async Task DeliverAsync(PendingSend send, CancellationToken stoppingToken)
    {
        SendResult result;
        try
        {
            result = await SendAsync(send.Url, send.Secret, send.Event, send.DeliveryId, send.Body, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }

        var attempt = send.Attempts + 1;
        TimeSpan? retryAfter = null;
        if (!result.Delivered && !result.Permanent && attempt < _options.MaxAttempts)
        {
            retryAfter = RetryDelay(attempt);
        }

        try
        {
            var state = await _store.RecordAttemptAsync(send.DeliveryId, result.Delivered, result.StatusCode, result.Error, retryAfter).ConfigureAwait(false);
            switch (state)
            {
                case DeliveryState.Delivered:
                    _logger.LogDebug("Webhooks: {Delivery} ({Event}) delivered to subscription {Subscription}", send.DeliveryId, send.Event, send.SubscriptionId);
                    break;
                case DeliveryState.Retrying:
                    _logger.LogWarning("Webhooks: {Delivery} ({Event}) to subscription {Subscription} at {Url} failed (try {Attempt} of {Max}): {Error}; next try in {Delay}",
                        send.DeliveryId, send.Event, send.SubscriptionId, ForLog(send.Url), attempt, _options.MaxAttempts, result.Error, retryAfter);
                    break;
                case DeliveryState.Parked:
                    _logger.LogError("Webhooks: {Delivery} ({Event}) to subscription {Subscription} at {Url} parked after {Attempt} tries: {Error}",
                        send.DeliveryId, send.Event, send.SubscriptionId, ForLog(send.Url), attempt, result.Error);
                    break;
            }
        }
        catch (Exception ex)
        {
            // Not recorded: the delivery stays open and is sent again (the receiver deduplicates by delivery id).
            _logger.LogError(ex, "Webhooks: could not record the outcome of {Delivery}", send.DeliveryId);
        }
    }

    /// <summary>base × 2^(try-1), at most the configured maximum.</summary>
    internal TimeSpan RetryDelay(int failedAttempts)
    {
        var factor = Math.Pow(2, Math.Min(failedAttempts - 1, 40));
        var ms = Math.Min(_options.RetryBaseDelay.TotalMilliseconds * factor, _options.RetryMaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms);
    }

    /// <summary>One signed POST. Any 2xx is delivered; everything else, a timeout or a connection failure is not.</summary>
    internal async Task<SendResult> SendAsync(string url, string secret, string eventName, string deliveryId, string body, CancellationToken stoppingToken)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var timestamp = _time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, url);
        request.Content = new ByteArrayContent(bytes);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add("X-Crm-Event", eventName);
        request.Headers.Add("X-Crm-Delivery", deliveryId);
        request.Headers.Add("X-Crm-Timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add("X-Crm-Signature", WebhookSigner.Sign(secret, timestamp, bytes));

        using var budget = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        budget.CancelAfter(_options.RequestTimeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, budget.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status is >= 200 and < 300)
            {
                return new SendResult(true, status, null);
            }

            if (status is >= 300 and < 400)
            {
                return new SendResult(false, status,
                    $"HTTP {status} {response.ReasonPhrase}: redirect to '{response.Headers.Location}' not followed (point the subscription at the final URL)");
            }

            var snippet = await ReadSnippetAsync(response, budget.Token).ConfigureAwait(false);
            return new SendResult(false, status, $"HTTP {status} {response.ReasonPhrase}" + (snippet.Length > 0 ? ": " + snippet : ""));
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            return new SendResult(false, null, $"no answer within {_options.RequestTimeout.TotalSeconds:0.###} s (Webhooks:RequestTimeout)");
        }
        catch (HttpRequestException ex) when (Refusal(ex) is { } refused)
        {
            return new SendResult(false, null, refused.Message, Permanent: true);
        }
        catch (HttpRequestException ex)
        {
            return new SendResult(false, null, "connection failed: " + ex.Message);
        }
    }

    private static TargetRefusedException? Refusal(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is TargetRefusedException refused)
            {
                return refused;
            }
        }

        return null;
    }

    /// <summary>The start of an error answer, on one line, for the delivery history.</summary>
    private static async Task<string> ReadSnippetAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[512];
            var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            var text = Encoding.UTF8.GetString(buffer, 0, read).ReplaceLineEndings(" ").Trim();
            return text.Length > 200 ? text[..200] + "…" : text;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            return "";
        }
    }

    /// <summary>The URL without query or user info: tokens that receivers put there stay out of the logs.</summary>
    internal static string ForLog(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Path) : "(invalid url)";

    public override void Dispose()
    {
        base.Dispose();
        _http.Dispose();
        _wake.Dispose();
    }
}

using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace CrmEngine.Mail.Sending;

/// <summary>An attempt failed: <see cref="Permanent"/> for a 5xx reply (never retried), otherwise tried again later.</summary>
internal sealed class MailTransportException(bool permanent, string message, Exception? inner = null) : Exception(message, inner)
{
    public bool Permanent { get; } = permanent;
}

/// <summary>Where one worker hands its messages. Not thread-safe: each worker owns one.</summary>
internal interface IMailTransport : IAsyncDisposable
{
    /// <summary>Delivers the message; returns the server's reply (or where the file went).</summary>
    Task<string> SendAsync(MimeMessage message, string fileName, CancellationToken cancellationToken);
}

/// <summary>
/// One SMTP connection (MailKit <see cref="SmtpClient"/>), kept open and reused for the worker's next messages. After any
/// failure it is dropped and opened again for the next message, so a half-broken session is never reused.
/// </summary>
internal sealed class SmtpTransport(MailOptions options, TimeProvider time) : IMailTransport
{
    /// <summary>An idle connection older than this is checked with NOOP before use (servers close idle sessions).</summary>
    private static readonly TimeSpan IdleProbe = TimeSpan.FromSeconds(20);

    private SmtpClient? _client;
    private DateTimeOffset _lastUse;

    /// <summary>Connections opened so far (for tests and the benchmark: reuse means this stays at 1 per worker).</summary>
    public int Connections { get; private set; }

    public async Task<string> SendAsync(MimeMessage message, string fileName, CancellationToken cancellationToken)
    {
        try
        {
            var client = await ConnectedAsync(cancellationToken).ConfigureAwait(false);
            var reply = await client.SendAsync(message, cancellationToken).ConfigureAwait(false);
            _lastUse = time.GetUtcNow();
            return reply;
        }
        catch (SmtpCommandException ex)
        {
            await DropAsync().ConfigureAwait(false);
            var code = (int)ex.StatusCode;
            throw new MailTransportException(code >= 500, $"{code} {ex.Message}".Trim(), ex);
        }
        catch (Exception ex) when (ex is not MailTransportException && Transient(ex, cancellationToken))
        {
            await DropAsync().ConfigureAwait(false);
            throw new MailTransportException(false, Describe(ex), ex);
        }
    }

    private static bool Transient(Exception ex, CancellationToken cancellationToken) => ex switch
    {
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        SmtpProtocolException or IOException or SocketException or TimeoutException or ServiceNotConnectedException
            or SslHandshakeException or AuthenticationException or NotSupportedException or ServiceNotAuthenticatedException
            or ProtocolException or InvalidOperationException => true,
        _ => false,
    };

    private string Describe(Exception ex) => ex switch
    {
        SocketException s => $"cannot connect to {options.SmtpHost}:{options.EffectivePort}: {s.Message}",
        AuthenticationException => $"the server refused the login of '{options.SmtpUser}': {ex.Message}",
        SslHandshakeException => $"TLS with {options.SmtpHost}:{options.EffectivePort} failed: {ex.Message.Split('\n')[0]}",
        OperationCanceledException or TimeoutException => $"no answer from {options.SmtpHost}:{options.EffectivePort} within {options.SmtpTimeout}",
        _ => $"{ex.GetType().Name}: {ex.Message.Split('\n')[0]}",
    };

    private async Task<SmtpClient> ConnectedAsync(CancellationToken cancellationToken)
    {
        if (_client is { IsConnected: true } open)
        {
            if (time.GetUtcNow() - _lastUse < IdleProbe)
            {
                return open;
            }

            try
            {
                await open.NoOpAsync(cancellationToken).ConfigureAwait(false);
                return open;
            }
            catch (Exception ex) when (ex is IOException or SmtpProtocolException or SmtpCommandException or ServiceNotConnectedException or SocketException)
            {
                await DropAsync().ConfigureAwait(false);
            }
        }

        await DropAsync().ConfigureAwait(false);
        var client = new SmtpClient { Timeout = (int)options.SmtpTimeout.TotalMilliseconds };
        if (!string.IsNullOrWhiteSpace(options.SmtpCertificateThumbprint))
        {
            client.ServerCertificateValidationCallback = AcceptPinned;
        }

        try
        {
            var secure = options.SmtpTls switch
            {
                SmtpTlsMode.None => SecureSocketOptions.None,
                SmtpTlsMode.StartTls => SecureSocketOptions.StartTls,
                SmtpTlsMode.SslOnConnect => SecureSocketOptions.SslOnConnect,
                _ => SecureSocketOptions.Auto,
            };
            await client.ConnectAsync(options.SmtpHost!, options.EffectivePort, secure, cancellationToken).ConfigureAwait(false);
            Connections++;
            if (!string.IsNullOrWhiteSpace(options.SmtpUser))
            {
                if (!client.Capabilities.HasFlag(SmtpCapabilities.Authentication))
                {
                    throw new ServiceNotAuthenticatedException(
                        $"{options.SmtpHost}:{options.EffectivePort} offers no AUTH (it may need TLS first: check Mail:SmtpTls); messages are kept and retried");
                }

                await client.AuthenticateAsync(options.SmtpUser, options.SmtpPassword ?? "", cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            client.Dispose();
            throw;
        }

        _client = client;
        _lastUse = time.GetUtcNow();
        return client;
    }

    /// <summary>Chains to a trusted root, or is exactly the configured certificate (SHA-1 or SHA-256 thumbprint).</summary>
    private bool AcceptPinned(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (certificate is null)
        {
            return false;
        }

        var wanted = options.SmtpCertificateThumbprint!.Replace(":", "", StringComparison.Ordinal);
        var raw = certificate.GetRawCertData();
        var actual = wanted.Length == 64 ? Convert.ToHexString(SHA256.HashData(raw)) : Convert.ToHexString(SHA1.HashData(raw));
        return string.Equals(actual, wanted, StringComparison.OrdinalIgnoreCase);
    }

    private async Task DropAsync()
    {
        if (_client is { } client)
        {
            _client = null;
            try
            {
                if (client.IsConnected)
                {
                    using var quit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await client.DisconnectAsync(true, quit.Token).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is IOException or SmtpProtocolException or SmtpCommandException or OperationCanceledException or SocketException
                                           or ServiceNotConnectedException)
            {
                // Broken already; it is dropped either way.
            }
            finally
            {
                client.Dispose();
            }
        }
    }

    public async ValueTask DisposeAsync() => await DropAsync().ConfigureAwait(false);
}

/// <summary>
/// No SMTP server configured: each message becomes <c>&lt;folder&gt;/&lt;outbox id&gt;.eml</c>, written to a temporary
/// name, flushed to disk and renamed, so a reader never sees half a file and a repeated attempt replaces the file
/// instead of adding a second one.
/// </summary>
internal sealed class PickupTransport(string folder) : IMailTransport
{
    /// <summary>RFC 5322 line ends (CRLF) on every OS, as mail programs and pickup-folder MTAs expect.</summary>
    private static readonly FormatOptions CrLf = CreateFormat();

    private static FormatOptions CreateFormat()
    {
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        return format;
    }

    public async Task<string> SendAsync(MimeMessage message, string fileName, CancellationToken cancellationToken)
    {
        try
        {
            Directory.CreateDirectory(folder);
            var target = Path.Combine(folder, fileName + ".eml");
            var temp = Path.Combine(folder, "." + fileName + ".tmp");
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 16384, FileOptions.Asynchronous))
            {
                await message.WriteToAsync(CrLf, stream, cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, target, overwrite: true);
            return "written to " + target;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MailTransportException(false, $"cannot write to the pickup folder {folder}: {ex.Message}", ex);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Mail.Tests.Support;
using MimeKit;

namespace CrmEngine.Mail.Tests;

/// <summary>
/// Sending through a real SMTP server that needs TLS and AUTH (aiosmtpd with a self-signed certificate made here):
/// STARTTLS and implicit TLS with the certificate pinned by thumbprint, the default validation refusing the unknown
/// certificate, a wrong password recorded clearly, and the password in no log line and no <c>crm mail show</c> output.
/// </summary>
public sealed class TlsAuthTests
{
    private const string User = "crm-relay";
    private const string Password = "S3cret-Pa55word-%&";

    [Theory]
    [InlineData("starttls", "StartTls")]
    [InlineData("implicit", "SslOnConnect")]
    public async Task Mail_goes_over_TLS_with_AUTH_when_the_self_signed_certificate_is_pinned(string mode, string tls)
    {
        using var temp = new TempFolder();
        using var server = TlsSmtpServer.Start(temp.Path, mode);
        var settings = Settings(temp.Path, server, tls);
        settings["Mail:SmtpCertificateThumbprint"] = server.Sha256Thumbprint;
        await using var world = await MailWorld.StartAsync(temp.Path, settings);
        var customer = await world.CustomerAsync("Tomás Öberg", "tomas@example.com");

        var id = (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "tls" })).MessageId;
        var sent = await world.WaitForStateAsync(id, MailState.Sent);

        var message = Assert.Single(server.Received());
        Assert.Equal(User, message.Headers["X-Auth"]);
        Assert.Equal(sent.MessageId, message.MessageId);
        Assert.Equal("Tomás Öberg", ((MailboxAddress)message.To[0]).Name);
        AssertNoPassword(world, id);
    }

    [Fact]
    public async Task An_unknown_certificate_is_refused_by_default_and_the_message_waits_saying_why()
    {
        using var temp = new TempFolder();
        using var server = TlsSmtpServer.Start(temp.Path, "starttls");
        await using var world = await MailWorld.StartAsync(temp.Path, Settings(temp.Path, server, "StartTls"));
        var customer = await world.CustomerAsync("No Trust", "trust@example.com");

        var id = (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "untrusted" })).MessageId;
        var waiting = await world.WaitForStateAsync(id, MailState.Retrying);
        Assert.Contains($"TLS with 127.0.0.1:{server.Port} failed", waiting.LastError, StringComparison.Ordinal);
        Assert.Empty(server.Received());
        AssertNoPassword(world, id);
    }

    [Fact]
    public async Task A_wrong_password_is_a_clear_recorded_failure_that_never_shows_the_password()
    {
        using var temp = new TempFolder();
        using var server = TlsSmtpServer.Start(temp.Path, "starttls");
        var settings = Settings(temp.Path, server, "StartTls");
        settings["Mail:SmtpCertificateThumbprint"] = server.Sha256Thumbprint;
        settings["Mail:SmtpPassword"] = "wrong-" + Password;
        settings["Mail:MaxAttempts"] = "2";
        await using var world = await MailWorld.StartAsync(temp.Path, settings);
        var customer = await world.CustomerAsync("Wrong Login", "login@example.com");

        var id = (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "wrong" })).MessageId;
        // Tried again (an operator may fix the password meanwhile), then failed with the reason after the last attempt.
        var failed = await world.WaitForStateAsync(id, MailState.Failed);
        Assert.Equal(2, failed.Attempts);
        Assert.Contains($"the server refused the login of '{User}'", failed.LastError, StringComparison.Ordinal);
        Assert.Contains(world.Logs.Lines, l => l.Contains(id, StringComparison.Ordinal) && l.Contains("refused the login", StringComparison.Ordinal));
        Assert.Empty(server.Received());
        Assert.DoesNotContain("wrong-" + Password, world.Logs.All, StringComparison.Ordinal);
        AssertNoPassword(world, id);
    }

    private static Dictionary<string, string?> Settings(string folder, TlsSmtpServer server, string tls)
    {
        var settings = MailWorld.Settings(folder, smtp: null, workers: 1);
        settings["Mail:SmtpHost"] = "127.0.0.1";
        settings["Mail:SmtpPort"] = server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Mail:SmtpTls"] = tls;
        settings["Mail:SmtpUser"] = User;
        settings["Mail:SmtpPassword"] = Password;
        return settings;
    }

    /// <summary>Neither the logs, nor the message as <c>crm mail show</c> prints it, nor the options' text hold the password.</summary>
    private static void AssertNoPassword(MailWorld world, string id)
    {
        Assert.DoesNotContain(Password, world.Logs.All, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, MailAdministration.FormatMessage(world.Message(id)), StringComparison.Ordinal);
        Assert.Contains(world.Logs.Lines, l => l.Contains($"user {User}, password set", StringComparison.Ordinal));
    }
}

/// <summary>
/// aiosmtpd with TLS and AUTH (Support/crm_smtp_tls.py) on a free loopback port, with a self-signed certificate for
/// localhost and 127.0.0.1 made by .NET's CertificateRequest. A missing aiosmtpd fails the test.
/// </summary>
internal sealed class TlsSmtpServer : IDisposable
{
    private readonly Process _process;

    private TlsSmtpServer(Process process, int port, string maildir, string thumbprint)
    {
        _process = process;
        Port = port;
        Maildir = maildir;
        Sha256Thumbprint = thumbprint;
    }

    public int Port { get; }

    public string Maildir { get; }

    public string Sha256Thumbprint { get; }

    public static TlsSmtpServer Start(string folder, string mode)
    {
        if (!File.Exists(SmtpServer.Executable))
        {
            throw new InvalidOperationException($"{SmtpServer.Executable} is missing: install the Debian package python3-aiosmtpd (scripts/test.sh does).");
        }

        var dir = Path.Combine(folder, "tls-smtp");
        Directory.CreateDirectory(dir);
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        var certFile = Path.Combine(dir, "cert.pem");
        var keyFile = Path.Combine(dir, "key.pem");
        File.WriteAllText(certFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, rsa.ExportPkcs8PrivateKeyPem());

        var port = SmtpServer.FreePort();
        var maildir = Path.Combine(dir, "maildir");
        // Debian's python (the one aiosmtpd is installed for), whatever python3 comes first on PATH.
        var start = new ProcessStartInfo("/usr/bin/python3")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Support", "crm_smtp_tls.py"), mode, port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     certFile, keyFile, maildir, "crm-relay", "S3cret-Pa55word-%&" })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        var process = Process.Start(start)!;
        var stderr = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        process.BeginErrorReadLine();
        var ready = process.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(60)) || ready.Result != "ready")
        {
            process.Kill(entireProcessTree: true);
            lock (stderr)
            {
                throw new InvalidOperationException($"the TLS SMTP server did not start: {stderr}");
            }
        }

        return new TlsSmtpServer(process, port, maildir, Convert.ToHexString(SHA256.HashData(certificate.RawData)));
    }

    public List<MimeMessage> Received()
    {
        var folder = Path.Combine(Maildir, "new");
        return Directory.Exists(folder) ? Directory.GetFiles(folder).Select(f => MimeMessage.Load(f)).ToList() : [];
    }

    public void Dispose()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}

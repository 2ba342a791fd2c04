using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrmEngine.Api.Tests.Support;

namespace CrmEngine.Api.Tests;

/// <summary>HTTPS with a configured certificate: a self-signed one made here, written as a PFX, served by the API.</summary>
public sealed class HttpsTests
{
    [Fact]
    public async Task The_api_serves_https_with_the_configured_pfx_and_a_client_trusting_that_certificate_gets_through()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=crm-https-test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false)); // server auth
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        var folder = Path.Combine(Path.GetTempPath(), "crm-https-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var pfx = Path.Combine(folder, "crm.pfx");
        await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "pfx-password-1"));
        using var trusted = X509CertificateLoader.LoadCertificate(certificate.RawData); // the public part only, as a client has it

        try
        {
            await using var api = await ApiTestHost.StartAsync(o =>
            {
                o.Settings["Api:Urls"] = "https://127.0.0.1:0";
                o.Settings["Api:Certificate:Path"] = pfx;
                o.Settings["Api:Certificate:Password"] = "pfx-password-1";
            });
            Assert.Equal("https", api.BaseAddress.Scheme);

            // A client that trusts exactly this certificate (as a root), with the normal name check.
            using var handler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    CertificateChainPolicy = new X509ChainPolicy
                    {
                        TrustMode = X509ChainTrustMode.CustomRootTrust,
                        CustomTrustStore = { trusted },
                        RevocationMode = X509RevocationMode.NoCheck,
                    },
                },
            };
            using var client = new HttpClient(handler) { BaseAddress = api.BaseAddress };
            client.DefaultRequestHeaders.Add("X-Api-Key", api.ReadKey);
            using var health = await client.GetAsync("health");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            using var changes = await client.GetAsync("api/changes");
            Assert.Equal(HttpStatusCode.OK, changes.StatusCode);

            // A client with the system's trust store refuses the self-signed certificate: it is really TLS with that certificate.
            using var untrusting = new HttpClient { BaseAddress = api.BaseAddress };
            var refused = await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync("health"));
            Assert.IsType<AuthenticationException>(refused.InnerException, exactMatch: false);
            Assert.DoesNotContain("pfx-password-1", api.Log, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_wrong_pfx_password_stops_the_start_naming_the_path_but_not_the_password()
    {
        using var rsa = RSA.Create(2048);
        using var certificate = new CertificateRequest("CN=crm", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var pfx = Path.Combine(Path.GetTempPath(), "crm-https-" + Guid.NewGuid().ToString("N") + ".pfx");
        await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "right-password"));
        try
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => ApiTestHost.StartAsync(o =>
            {
                o.Settings["Api:Urls"] = "https://127.0.0.1:0";
                o.Settings["Api:Certificate:Path"] = pfx;
                o.Settings["Api:Certificate:Password"] = "wrong-password";
            }));
            Assert.Contains(pfx, error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("wrong-password", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(pfx);
        }
    }
}

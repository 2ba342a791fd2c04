using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CrmEngine.Api.Tests.Support;
using CrmEngine.Security;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CrmEngine.Api.Tests;

/// <summary>
/// Bearer tokens with a JWKS signing key file, the user taken from <c>oid</c> and the scope from <c>scp</c>
/// (<c>Api:Jwt:ScopeClaim</c>): the token's scope narrows the user, a token without a CRM scope may do nothing, a token
/// without the user claim is 403, and a half-configured <c>Api:Jwt</c> stops the start naming the key.
/// </summary>
public sealed class BearerTokenTests
{
    private const string Issuer = "https://idp.test/tenant";
    private const string Audience = "api://crm";

    [Fact]
    public async Task Token_scope_narrows_the_user_and_tokens_without_user_or_crm_scope_are_refused()
    {
        using var rsa = RSA.Create(2048);
        var jwks = Path.Combine(Path.GetTempPath(), "crm-api-tests", Guid.NewGuid().ToString("N") + ".jwks.json");
        Directory.CreateDirectory(Path.GetDirectoryName(jwks)!);
        var p = rsa.ExportParameters(false);
        File.WriteAllText(jwks, Jwks(p, "k1"));
        try
        {
            await using var api = await StartSeededAsync(new()
            {
                ["Issuer"] = Issuer, ["Audience"] = Audience, ["SigningKeys:0"] = jwks, ["UserClaim"] = "oid", ["ScopeClaim"] = "scp",
            });
            var admin = api.GetService<SecurityAdministration>();
            await admin.CreateUserAsync(new SecurityUser { Id = "anna", Name = "Anna", BusinessUnit = "sales", Roles = ["salesperson"] }, "admin");
            using var http = new HttpClient { BaseAddress = api.BaseAddress };

            string Token(string? user, string scp)
            {
                var claims = new Dictionary<string, object> { ["scp"] = scp };
                if (user is not null)
                {
                    claims["oid"] = user;
                }

                return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
                {
                    Issuer = Issuer, Audience = Audience, Expires = DateTime.UtcNow.AddMinutes(10), Claims = claims,
                    SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = "k1" }, SecurityAlgorithms.RsaSha256),
                });
            }

            async Task<(HttpStatusCode Status, string Body)> Send(HttpMethod method, string path, string token, string? json = null)
            {
                using var request = new HttpRequestMessage(method, path);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                if (json is not null)
                {
                    request.Content = ApiTestHost.Json(json);
                }

                using var response = await http.SendAsync(request);
                var text = await response.Content.ReadAsStringAsync();
                // Problems answer their detail (JSON escapes quotes), records their JSON.
                return (response.StatusCode, response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                    ? JsonNode.Parse(text)!["detail"]!.GetValue<string>() : text);
            }

            var read = Token("anna", "openid crm.read");
            Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "api/customers", read)).Status);
            var (status, body) = await Send(HttpMethod.Post, "api/customers", read, """{"name":"Nope GmbH"}""");
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Equal("this needs the 'write' scope; the token of user 'anna' has 'read'", body);

            (status, body) = await Send(HttpMethod.Post, "api/customers", Token("anna", "crm.read crm.write"), """{"name":"Anna GmbH"}""");
            Assert.True(status == HttpStatusCode.Created, body);
            var audit = await api.Store().Audit.ForEntityAsync("customer", JsonNode.Parse(body)!["id"]!.GetValue<string>());
            Assert.Equal("anna", Assert.Single(audit).Actor);

            (status, body) = await Send(HttpMethod.Get, "api/customers", Token("anna", "openid profile"));
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Contains("has 'none'", body, StringComparison.Ordinal);

            (status, body) = await Send(HttpMethod.Get, "api/customers", Token(null, "crm.read"));
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Contains("the bearer token has no 'oid' claim", body, StringComparison.Ordinal);

            // Keys still work beside tokens (the header decides).
            using var byKey = await api.Reader.GetAsync("api/customers");
            Assert.Equal(HttpStatusCode.OK, byKey.StatusCode);
        }
        finally
        {
            File.Delete(jwks);
        }
    }

    [Fact]
    public async Task Signing_keys_come_from_the_providers_discovery_document_when_Authority_is_set()
    {
        using var rsa = RSA.Create(2048);
        var p = rsa.ExportParameters(false);
        // A provider on loopback: discovery document and JWKS, as Keycloak or Entra ID serve them.
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var idp = builder.Build();
        string? authority = null;
        Microsoft.AspNetCore.Builder.EndpointRouteBuilderExtensions.MapGet(idp, "/.well-known/openid-configuration", () => Microsoft.AspNetCore.Http.Results.Text(
            new JsonObject { ["issuer"] = authority, ["jwks_uri"] = authority + "/keys" }.ToJsonString(), "application/json"));
        Microsoft.AspNetCore.Builder.EndpointRouteBuilderExtensions.MapGet(idp, "/keys", () => Microsoft.AspNetCore.Http.Results.Text(Jwks(p, "d1"), "application/json"));
        await idp.StartAsync();
        authority = idp.Urls.First().TrimEnd('/');

        await using var api = await StartSeededAsync(new()
        {
            ["Issuer"] = authority, ["Audience"] = Audience, ["Authority"] = authority, ["RequireHttpsMetadata"] = "false", ["UserClaim"] = "sub",
        });
        using var http = new HttpClient { BaseAddress = api.BaseAddress };
        string Token(RSA key) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = authority, Audience = Audience, Expires = DateTime.UtcNow.AddMinutes(10), Claims = new Dictionary<string, object> { ["sub"] = "admin" },
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(key) { KeyId = "d1" }, SecurityAlgorithms.RsaSha256),
        });

        using (var request = new HttpRequestMessage(HttpMethod.Get, "api/security/users"))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token(rsa));
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains(JsonNode.Parse(body)!.AsArray(), u => u!["id"]!.GetValue<string>() == "admin");
        }

        using var other = RSA.Create(2048);
        using (var request = new HttpRequestMessage(HttpMethod.Get, "api/customers"))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token(other));
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains("signature does not verify", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        await idp.StopAsync();
    }

    [Fact]
    public async Task A_half_configured_jwt_section_stops_the_start_naming_the_key()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var api = await ApiTestHost.StartAsync(o => o.Settings["Api:Jwt:Issuer"] = Issuer);
        });
        Assert.Contains("Api:Jwt:Audience is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("Api:Jwt needs Authority (OpenID Connect discovery) or SigningKeys", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A JWKS document with the public half of one RSA key, as a provider publishes it.</summary>
    private static string Jwks(RSAParameters key, string kid) => new JsonObject
    {
        ["keys"] = new JsonArray(new JsonObject
        {
            ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = kid,
            ["n"] = Base64UrlEncoder.Encode(key.Modulus), ["e"] = Base64UrlEncoder.Encode(key.Exponent),
        }),
    }.ToJsonString();

    /// <summary>The API with these <c>Api:Jwt</c> settings and the shipped roles and users seeded.</summary>
    private static async Task<ApiTestHost> StartSeededAsync(Dictionary<string, string?> jwt)
    {
        var api = await ApiTestHost.StartAsync(o =>
        {
            foreach (var (k, v) in jwt)
            {
                o.Settings["Api:Jwt:" + k] = v;
            }
        });
        await api.GetService<SecurityAdministration>().SeedAsync(SeedFile.Load(ShippedSeed()), "admin");
        return api;
    }

    internal static string ShippedSeed()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "security.json")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("security.json not found"), "security.json");
    }
}

// response_mode=form_post: hand the authorization response to the application.
document.getElementById("form-post").submit();
